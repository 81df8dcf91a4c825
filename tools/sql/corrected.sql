-- The curated rows as the field definitions mean them (docs/SEMANTICS.md, "Step by
-- step", column `corrected`, with issue 18's locations):
--   * each reading goes to the location of its lane in force at its time
--     (tools/sql/configuration.sql): a carriageway or a group of lanes at one point,
--     or -unieke_id for a lane no configuration in force holds; a wrong-way lane's
--     (TR) readings are left out, after the step 1 filter;
--   * one reading per (unieke_id, tijd_waarneming), whatever lve_nr it carries: latest
--     tijd_laatst_gewijzigd as an instant (NULL oldest), then the greatest
--     (i2..i5, s2..s5, bezettingsgraad);
--   * lane speed = (i2*s2+i3*s3+i4*s4+i5*s5) / (i2+i3+i4+i5) as double;
--   * uniqueid = the location id; one series per location;
--   * windows are time ranges [t-120, t] and [t-1140, t] on tijd_waarneming;
--   * previousspeed only when the previous row is at most 60 s earlier;
--   * jam bands 0 <= avg <= 40 -> 1, 40 < avg <= 250 -> 0, else -1.
--
-- Input: the view `located_readings` (tools/sql/configuration.sql, over
-- tools/sql/readings.sql). Run range, set by the caller as variables (epoch seconds):
-- context_start, output_start, output_end (exclusive).
--
-- Rolling averages: list_avg(list(x) OVER w) for the reason given in athena.sql
-- (row-order summation, as Spark's sliding frames).

WITH
kept AS (
    SELECT *
    FROM located_readings
    WHERE reject_reason IS NULL
      AND tijd_waarneming >= getvariable('context_start')
      AND tijd_waarneming < getvariable('output_end')
      AND rekendata_bezettingsgraad > -1
      AND defect = 0
      AND NOT wrong_way_lane
),

latest AS (
    SELECT *
    FROM kept
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY unieke_id, tijd_waarneming
        ORDER BY
            tijd_laatst_gewijzigd DESC NULLS LAST,
            verkeersintensiteit_klasse2 DESC,
            verkeersintensiteit_klasse3 DESC,
            verkeersintensiteit_klasse4 DESC,
            verkeersintensiteit_klasse5 DESC,
            voertuigsnelheid_rekenkundig_klasse2 DESC NULLS LAST,
            voertuigsnelheid_rekenkundig_klasse3 DESC NULLS LAST,
            voertuigsnelheid_rekenkundig_klasse4 DESC NULLS LAST,
            voertuigsnelheid_rekenkundig_klasse5 DESC NULLS LAST,
            rekendata_bezettingsgraad DESC
    ) = 1
),

-- Short names, and BIGINT so that no product or sum of odd values overflows.
lanes AS (
    SELECT
        location_id,
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
    FROM latest
),

lane_minutes AS (
    SELECT
        location_id,
        unieke_id,
        tijd_waarneming,
        i2, i3, i4, i5,
        -- Speed of the average vehicle. A class without vehicles adds nothing: its
        -- speed (0, or NULL, which validation allows there) is not read. The
        -- numerator is an exact integer, so the quotient is one correctly rounded
        -- double.
        CASE
            WHEN i2 + i3 + i4 + i5 > 0
            THEN CAST(CASE WHEN i2 > 0 THEN i2 * s2 ELSE 0 END
                    + CASE WHEN i3 > 0 THEN i3 * s3 ELSE 0 END
                    + CASE WHEN i4 > 0 THEN i4 * s4 ELSE 0 END
                    + CASE WHEN i5 > 0 THEN i5 * s5 ELSE 0 END AS DOUBLE)
                 / CAST(i2 + i3 + i4 + i5 AS DOUBLE)
        END AS lane_speed
    FROM lanes
),

location_minutes AS (
    SELECT
        location_id AS uniqueid,
        tijd_waarneming AS recordtimestamp,
        -- AVG of doubles, summed in unieke_id order so that the result does not
        -- depend on the order the files or threads deliver the lanes in.
        list_avg(list(lane_speed ORDER BY unieke_id)) AS currentspeed,
        ROUND(AVG(i2 + i3 + i4 + i5)) AS bezettingsgraad,
        SUM(i2) AS trafficintensityclass2,
        SUM(i3) AS trafficintensityclass3,
        SUM(i4) AS trafficintensityclass4,
        SUM(i5) AS trafficintensityclass5
    FROM lane_minutes
    GROUP BY location_id, tijd_waarneming
),

series AS (
    SELECT
        *,
        LAG(recordtimestamp) OVER location_series AS previous_recordtimestamp,
        LAG(currentspeed) OVER location_series AS previous_row_speed,
        list_avg(list(currentspeed) OVER (location_series RANGE BETWEEN 120 PRECEDING AND CURRENT ROW))
            AS avgspeed3minutes,
        list_avg(list(currentspeed) OVER (location_series RANGE BETWEEN 1140 PRECEDING AND CURRENT ROW))
            AS avgspeed20minutes
    FROM location_minutes
    WINDOW location_series AS (PARTITION BY uniqueid ORDER BY recordtimestamp)
),

with_previous AS (
    SELECT
        *,
        CASE WHEN recordtimestamp - previous_recordtimestamp <= 60 THEN previous_row_speed END
            AS previousspeed
    FROM series
)

SELECT
    CAST(uniqueid AS INTEGER) AS uniqueid,
    CAST(recordtimestamp AS BIGINT) AS recordtimestamp,
    CAST(currentspeed AS DOUBLE) AS currentspeed,
    CAST(bezettingsgraad AS INTEGER) AS bezettingsgraad,
    CAST(previousspeed AS DOUBLE) AS previousspeed,
    CAST(CASE
        WHEN avgspeed3minutes >= 0 AND avgspeed3minutes <= 40 THEN 1
        WHEN avgspeed3minutes > 40 AND avgspeed3minutes <= 250 THEN 0
        ELSE -1
    END AS INTEGER) AS trafficjamindicator,
    CAST(CASE
        WHEN avgspeed20minutes >= 0 AND avgspeed20minutes <= 40 THEN 1
        WHEN avgspeed20minutes > 40 AND avgspeed20minutes <= 250 THEN 0
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
FROM with_previous
WHERE recordtimestamp >= getvariable('output_start')
  AND recordtimestamp < getvariable('output_end')
