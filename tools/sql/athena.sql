-- The curated rows as the Athena `INSERT INTO curated SELECT ...` computed them,
-- quirks included (docs/SEMANTICS.md, "Step by step", column `athena`):
--   * duplicates are not removed: a reading seen twice counts twice;
--   * lane speed = (s2+s3+s4+s5) DIV n, integer division, n = classes with iK > 0;
--   * uniqueid = MAX(unieke_id) of the lanes present in that (lve_nr, minute);
--   * windows count rows (2 and 19 preceding), LAG has no time check;
--   * jam bands BETWEEN 0 AND 40 / BETWEEN 41 AND 250, so 40.5 gives -1.
--
-- Input: the view `readings` (tools/sql/readings.sql). Run range, set by the caller
-- as variables (epoch seconds): context_start (output_start - lookback),
-- output_start, output_end (exclusive).
--
-- The rolling averages are written list_avg(list(x) OVER w) rather than
-- AVG(x) OVER w: the same value (sum of the non-NULL values / their count, in
-- double), but summed in row order as Spark's sliding frames do; DuckDB's segment
-- tree sums in another order and can differ in the last bit.

WITH
kept AS (
    SELECT *
    FROM readings
    WHERE reject_reason IS NULL
      AND tijd_waarneming >= getvariable('context_start')
      AND tijd_waarneming < getvariable('output_end')
      AND rekendata_bezettingsgraad > -1
      AND defect = 0
),

-- Short names, and BIGINT so that no sum of odd values overflows.
lanes AS (
    SELECT
        lve_nr,
        unieke_id,
        tijd_waarneming,
        CAST(verkeersintensiteit_klasse2 AS BIGINT) AS i2,
        CAST(verkeersintensiteit_klasse3 AS BIGINT) AS i3,
        CAST(verkeersintensiteit_klasse4 AS BIGINT) AS i4,
        CAST(verkeersintensiteit_klasse5 AS BIGINT) AS i5,
        CAST(voertuigsnelheid_rekenkundig_klasse2 AS BIGINT) AS s2,
        CAST(voertuigsnelheid_rekenkundig_klasse3 AS BIGINT) AS s3,
        CAST(voertuigsnelheid_rekenkundig_klasse4 AS BIGINT) AS s4,
        CAST(voertuigsnelheid_rekenkundig_klasse5 AS BIGINT) AS s5
    FROM kept
),

lane_minutes AS (
    SELECT
        lve_nr,
        unieke_id,
        tijd_waarneming,
        i2, i3, i4, i5,
        -- The Athena query summed all four speeds (0 where no vehicle passed) and
        -- divided by the number of classes with vehicles; `//` truncates like
        -- Athena's integer `/`.
        CASE
            WHEN i2 + i3 + i4 + i5 > 0
            THEN (s2 + s3 + s4 + s5)
                 // (CAST(i2 > 0 AS INTEGER) + CAST(i3 > 0 AS INTEGER)
                     + CAST(i4 > 0 AS INTEGER) + CAST(i5 > 0 AS INTEGER))
        END AS lane_speed
    FROM lanes
),

location_minutes AS (
    SELECT
        MAX(unieke_id) AS uniqueid,
        tijd_waarneming AS recordtimestamp,
        AVG(lane_speed) AS currentspeed,
        ROUND(AVG(i2 + i3 + i4 + i5)) AS bezettingsgraad,
        SUM(i2) AS trafficintensityclass2,
        SUM(i3) AS trafficintensityclass3,
        SUM(i4) AS trafficintensityclass4,
        SUM(i5) AS trafficintensityclass5
    FROM lane_minutes
    GROUP BY lve_nr, tijd_waarneming
),

series AS (
    SELECT
        *,
        LAG(currentspeed) OVER location_series AS previousspeed,
        list_avg(list(currentspeed) OVER (location_series ROWS BETWEEN 2 PRECEDING AND CURRENT ROW))
            AS avgspeed3minutes,
        list_avg(list(currentspeed) OVER (location_series ROWS BETWEEN 19 PRECEDING AND CURRENT ROW))
            AS avgspeed20minutes
    FROM location_minutes
    WINDOW location_series AS (PARTITION BY uniqueid ORDER BY recordtimestamp)
)

SELECT
    CAST(uniqueid AS INTEGER) AS uniqueid,
    CAST(recordtimestamp AS BIGINT) AS recordtimestamp,
    CAST(currentspeed AS DOUBLE) AS currentspeed,
    CAST(bezettingsgraad AS INTEGER) AS bezettingsgraad,
    CAST(previousspeed AS DOUBLE) AS previousspeed,
    CAST(CASE
        WHEN avgspeed3minutes BETWEEN 0 AND 40 THEN 1
        WHEN avgspeed3minutes BETWEEN 41 AND 250 THEN 0
        ELSE -1
    END AS INTEGER) AS trafficjamindicator,
    CAST(CASE
        WHEN avgspeed20minutes BETWEEN 0 AND 40 THEN 1
        WHEN avgspeed20minutes BETWEEN 41 AND 250 THEN 0
        ELSE -1
    END AS INTEGER) AS trafficjamindicatorlong,
    CAST(trafficintensityclass2 AS INTEGER) AS trafficintensityclass2,
    CAST(trafficintensityclass3 AS INTEGER) AS trafficintensityclass3,
    CAST(trafficintensityclass4 AS INTEGER) AS trafficintensityclass4,
    CAST(trafficintensityclass5 AS INTEGER) AS trafficintensityclass5,
    CAST(CASE
        WHEN currentspeed - previousspeed >= 20 THEN 1
        WHEN currentspeed - previousspeed <= -20 THEN -1
        ELSE 0
    END AS INTEGER) AS speeddiffindicator,
    CAST(avgspeed3minutes AS DOUBLE) AS avgspeed3minutes,
    CAST(avgspeed20minutes AS DOUBLE) AS avgspeed20minutes,
    CAST(year(make_timestamp(recordtimestamp * 1000000)) AS BIGINT) AS year,
    CAST(month(make_timestamp(recordtimestamp * 1000000)) AS BIGINT) AS month,
    CAST(day(make_timestamp(recordtimestamp * 1000000)) AS BIGINT) AS day,
    CAST(hour(make_timestamp(recordtimestamp * 1000000)) AS BIGINT) AS hour
FROM series
WHERE recordtimestamp >= getvariable('output_start')
  AND recordtimestamp < getvariable('output_end')
