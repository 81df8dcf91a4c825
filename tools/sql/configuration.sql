-- The locations of `corrected`, from the traffic centre's configuration feed
-- (`mivconfig`), and the location each reading goes to (issue 18: a location is one
-- carriageway, or one group of lanes beside it, at one measurement point; an lve_nr is
-- a roadside cabinet serving both directions and slip roads, so it is no location).
--
-- Input: the table configuration_source, one row per lane (`meetpunt`) per snapshot,
-- each value the element's text as tools/duckdb_reference.py reads it from the XML
-- (trimmed; NULL where the element is missing or blank):
--   configuration VARCHAR   the snapshot's file name
--   snapshot_time BIGINT    epoch seconds it comes into force (NULL: a single file)
--   unieke_id, beschrijvende_id, volledige_naam, ident_8, lve_nr, kmp_rsys, rijstrook,
--   lengtegraad, breedtegraad VARCHAR (numbers with a decimal comma)
-- and the view `readings` (tools/sql/readings.sql).
--
-- A lane's location key is `road|point|group`:
--   group  from Rijstrook, letters + digits: TR.. -> none (a wrong-way lane: no
--          location, its readings are left out); S.. -> main; R with number >= 10 ->
--          main; R below 10 or without a number -> merge; other letters -> the letters;
--          missing or not letters + digits -> unknown;
--   point  'm' || the reference point in metres (km * 1000 rounded half to even, as
--          Python's round); else 'at' || lon,lat with 6 decimals; else 'lane' || unieke_id;
--   road   Ident_8; else 'lane' || unieke_id.
-- Its id: the first 4 bytes of the key's SHA-256, big-endian, AND 0x7FFFFFFF.
--
-- Snapshot k is in force from its time until the next one's; the earliest one also
-- for every earlier reading; a single file for every reading. A reading whose lane no
-- snapshot in force at its time holds goes to a location of its own, -unieke_id.

CREATE OR REPLACE TEMP VIEW configured_lanes AS
WITH parsed AS (
    SELECT
        configuration,
        snapshot_time,
        text_integer(unieke_id) AS unieke_id,
        beschrijvende_id,
        volledige_naam,
        ident_8,
        text_integer(lve_nr) AS lve_nr,
        rijstrook,
        TRY_CAST(replace(kmp_rsys, ',', '.') AS DOUBLE) AS kilometre_point,
        TRY_CAST(replace(lengtegraad, ',', '.') AS DOUBLE) AS longitude,
        TRY_CAST(replace(breedtegraad, ',', '.') AS DOUBLE) AS latitude,
        regexp_full_match(COALESCE(rijstrook, ''), '[A-Z]+[0-9]*') AS lane_type_known,
        regexp_extract(rijstrook, '^([A-Z]+)([0-9]*)$', 1) AS lane_kind,
        regexp_extract(rijstrook, '^([A-Z]+)([0-9]*)$', 2) AS lane_number,
        -- what does not parse, for the caller to refuse
        (unieke_id IS NOT NULL AND text_integer(unieke_id) IS NULL)
            OR (lve_nr IS NOT NULL AND text_integer(lve_nr) IS NULL)
            OR (kmp_rsys IS NOT NULL AND TRY_CAST(replace(kmp_rsys, ',', '.') AS DOUBLE) IS NULL)
            OR (lengtegraad IS NOT NULL AND TRY_CAST(replace(lengtegraad, ',', '.') AS DOUBLE) IS NULL)
            OR (breedtegraad IS NOT NULL AND TRY_CAST(replace(breedtegraad, ',', '.') AS DOUBLE) IS NULL)
            AS unparsable
    FROM configuration_source
),
parts AS (
    SELECT
        *,
        COALESCE(ident_8, 'lane' || unieke_id) AS road,
        CASE
            WHEN kilometre_point IS NOT NULL
                THEN 'm' || CAST(round_even(kilometre_point * 1000, 0) AS BIGINT)
            WHEN longitude IS NOT NULL AND latitude IS NOT NULL
                THEN 'at' || printf('%.6f,%.6f', longitude, latitude)
            ELSE 'lane' || unieke_id
        END AS point,
        CASE
            WHEN NOT lane_type_known THEN 'unknown'
            WHEN lane_kind = 'TR' THEN NULL
            WHEN lane_kind = 'S' THEN 'main'
            WHEN lane_kind = 'R' AND lane_number <> '' AND CAST(lane_number AS DOUBLE) >= 10 THEN 'main'
            WHEN lane_kind = 'R' THEN 'merge'
            ELSE lane_kind
        END AS lane_group
    FROM parsed
),
keyed AS (
    SELECT
        *,
        CASE WHEN lane_group IS NOT NULL THEN road || '|' || point || '|' || lane_group END AS location_key
    FROM parts
)
SELECT
    *,
    CAST(CAST('0x' || left(sha256(location_key), 8) AS BIGINT) & 2147483647 AS INTEGER) AS location_id
FROM keyed;

CREATE OR REPLACE TEMP VIEW configuration_spans AS
SELECT
    configuration,
    CASE WHEN ROW_NUMBER() OVER snapshots > 1 THEN snapshot_time END AS valid_from,
    LEAD(snapshot_time) OVER snapshots AS valid_to
FROM (SELECT DISTINCT configuration, snapshot_time FROM configuration_source)
WINDOW snapshots AS (ORDER BY snapshot_time);

-- Where a lane's readings go while a snapshot is in force: location_id, or NULL and
-- wrong_way for a TR lane.
CREATE OR REPLACE TEMP VIEW lane_assignments AS
SELECT
    lanes.unieke_id,
    spans.valid_from,
    spans.valid_to,
    lanes.location_id,
    lanes.lane_group IS NULL AS wrong_way,
    lanes.configuration
FROM configured_lanes AS lanes
JOIN configuration_spans AS spans USING (configuration);

-- Every reading with the location it goes to (NULL for a wrong-way lane's).
CREATE OR REPLACE TEMP VIEW located_readings AS
SELECT
    readings.*,
    COALESCE(assigned.wrong_way, FALSE) AS wrong_way_lane,
    CASE
        WHEN assigned.unieke_id IS NULL THEN -CAST(readings.unieke_id AS BIGINT)
        ELSE assigned.location_id
    END AS location_id
FROM readings
LEFT JOIN lane_assignments AS assigned
    ON assigned.unieke_id = readings.unieke_id
   AND (assigned.valid_from IS NULL OR readings.tijd_waarneming >= assigned.valid_from)
   AND (assigned.valid_to IS NULL OR readings.tijd_waarneming < assigned.valid_to);
