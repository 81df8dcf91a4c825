-- The daily summary (docs/SEMANTICS.md, "The daily summary"): one row per location,
-- UTC day and UTC hour that has at least one curated row.
--   * day and hour are read from recordtimestamp (epoch seconds) by arithmetic, not
--     from the curated table's partition columns nor the session time zone;
--   * local_hour is the Europe/Brussels wall-clock hour of the start of the UTC hour
--     (ICU: timezone(zone, TIMESTAMPTZ) gives the wall clock there);
--   * every curated row is a measured minute; a jam minute has an indicator of 1
--     exactly (0 flowing, -1 unknown and NULL are not);
--   * speeds: NULL currentspeed is left out of mean and percentile; quantile_cont is
--     the percentile interpolated between the closest ranks;
--   * vehicles: NULLs are left out, a sum of none is 0.
--
-- Input: the view or table `curated`, with the curated columns (docs/SEMANTICS.md,
-- "The curated table"). Epoch seconds are non-negative (1970..2100), so `//` and `%`
-- are floor division and its remainder.

WITH
minutes AS (
    SELECT
        uniqueid,
        recordtimestamp // 3600 AS utc_hour_number,  -- hours since 1970-01-01 00:00 UTC
        currentspeed,
        trafficjamindicator,
        trafficjamindicatorlong,
        trafficintensityclass2,
        trafficintensityclass3,
        trafficintensityclass4,
        trafficintensityclass5,
        avgspeed20minutes
    FROM curated
),

hours AS (
    SELECT
        uniqueid,
        utc_hour_number,
        count(*) AS minutes_measured,
        count(*) FILTER (WHERE trafficjamindicator = 1) AS jam_minutes,
        count(*) FILTER (WHERE trafficjamindicatorlong = 1) AS long_jam_minutes,
        avg(currentspeed) AS mean_speed,
        quantile_cont(currentspeed, 0.15) AS p15_speed,
        COALESCE(sum(CAST(trafficintensityclass2 AS BIGINT)), 0) AS vehicles_class2,
        COALESCE(sum(CAST(trafficintensityclass3 AS BIGINT)), 0) AS vehicles_class3,
        COALESCE(sum(CAST(trafficintensityclass4 AS BIGINT)), 0) AS vehicles_class4,
        COALESCE(sum(CAST(trafficintensityclass5 AS BIGINT)), 0) AS vehicles_class5,
        min(avgspeed20minutes) AS worst_avgspeed20
    FROM minutes
    GROUP BY uniqueid, utc_hour_number
)

SELECT
    CAST(uniqueid AS INTEGER) AS uniqueid,
    CAST(DATE '1970-01-01' + CAST(utc_hour_number // 24 AS INTEGER) AS DATE) AS day,
    CAST(utc_hour_number % 24 AS INTEGER) AS hour,
    CAST(hour(timezone('Europe/Brussels', to_timestamp(utc_hour_number * 3600))) AS INTEGER)
        AS local_hour,
    CAST(minutes_measured AS INTEGER) AS minutes_measured,
    CAST(jam_minutes AS INTEGER) AS jam_minutes,
    CAST(long_jam_minutes AS INTEGER) AS long_jam_minutes,
    CAST(mean_speed AS DOUBLE) AS mean_speed,
    CAST(p15_speed AS DOUBLE) AS p15_speed,
    CAST(vehicles_class2 AS BIGINT) AS vehicles_class2,
    CAST(vehicles_class3 AS BIGINT) AS vehicles_class3,
    CAST(vehicles_class4 AS BIGINT) AS vehicles_class4,
    CAST(vehicles_class5 AS BIGINT) AS vehicles_class5,
    CAST(worst_avgspeed20 AS DOUBLE) AS worst_avgspeed20
FROM hours
