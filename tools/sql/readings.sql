-- Every reading of the processing-hour folders read, typed, with the first reason
-- (docs/SEMANTICS.md, "Validation") it cannot be used; NULL when it can.
--
-- Input: the view raw_readings, built by tools/duckdb_reference.py from the raw files
-- with the raw column names and these types, NULL where a value did not parse:
--   unieke_id, lve_nr INTEGER; tijd_waarneming BIGINT (epoch seconds);
--   tijd_laatst_gewijzigd TIMESTAMPTZ, tijd_laatst_gewijzigd_text VARCHAR (as read);
--   defect, rekendata_bezettingsgraad, verkeersintensiteit_klasse2..5,
--   voertuigsnelheid_rekenkundig_klasse2..5 INTEGER.
-- A JSON line that is not an object reads as a row of NULLs and is rejected as
-- bad_tijd_waarneming rather than malformed_record, and readings outside the run's
-- range are judged too: the reason is not written anywhere here, only whether the
-- reading takes part.

CREATE OR REPLACE TEMP VIEW readings AS
SELECT
    *,
    CASE
        WHEN tijd_waarneming IS NULL THEN 'bad_tijd_waarneming'
        WHEN unieke_id IS NULL OR unieke_id <= 0 THEN 'bad_unieke_id'
        WHEN lve_nr IS NULL THEN 'bad_lve_nr'
        WHEN tijd_laatst_gewijzigd_text IS NOT NULL AND tijd_laatst_gewijzigd IS NULL
            THEN 'bad_tijd_laatst_gewijzigd'
        WHEN verkeersintensiteit_klasse2 IS NULL OR verkeersintensiteit_klasse3 IS NULL
          OR verkeersintensiteit_klasse4 IS NULL OR verkeersintensiteit_klasse5 IS NULL
            THEN 'bad_intensity'
        WHEN verkeersintensiteit_klasse2 < 0 OR verkeersintensiteit_klasse3 < 0
          OR verkeersintensiteit_klasse4 < 0 OR verkeersintensiteit_klasse5 < 0
            THEN 'negative_intensity'
        WHEN (verkeersintensiteit_klasse2 > 0
              AND COALESCE(voertuigsnelheid_rekenkundig_klasse2 NOT BETWEEN 0 AND 250, TRUE))
          OR (verkeersintensiteit_klasse3 > 0
              AND COALESCE(voertuigsnelheid_rekenkundig_klasse3 NOT BETWEEN 0 AND 250, TRUE))
          OR (verkeersintensiteit_klasse4 > 0
              AND COALESCE(voertuigsnelheid_rekenkundig_klasse4 NOT BETWEEN 0 AND 250, TRUE))
          OR (verkeersintensiteit_klasse5 > 0
              AND COALESCE(voertuigsnelheid_rekenkundig_klasse5 NOT BETWEEN 0 AND 250, TRUE))
            THEN 'bad_speed'
    END AS reject_reason
FROM raw_readings;
