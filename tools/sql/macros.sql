-- Parsing of raw values that arrive as text (JSON lines, where any value may be a
-- JSON string). DuckDB's own casts are lenient ('12.5' -> 13, '1e3' -> 1000,
-- '0x10' -> 16), so "an integer" is checked with a pattern first: optional sign and
-- digits, surrounding blanks allowed; anything else is not an integer.

CREATE OR REPLACE TEMP MACRO text_integer(v) AS
    CASE WHEN regexp_full_match(v, '\s*[+-]?[0-9]+\s*') THEN TRY_CAST(v AS INTEGER) END;

CREATE OR REPLACE TEMP MACRO text_bigint(v) AS
    CASE WHEN regexp_full_match(v, '\s*[+-]?[0-9]+\s*') THEN TRY_CAST(v AS BIGINT) END;

-- ISO-8601 (date, optionally 'T' or ' ' and a time, optionally an offset), read as an
-- instant: '2020-04-07T11:30:00+01:00' is 10:30 UTC. Without an offset the session
-- time zone (UTC) applies. The date prefix keeps out what DuckDB would also accept
-- ('infinity', 'epoch', ...).
CREATE OR REPLACE TEMP MACRO iso_instant(v) AS
    CASE WHEN regexp_full_match(v, '\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?')
         THEN TRY_CAST(v AS TIMESTAMPTZ) END;

-- tijd_waarneming: epoch seconds (digits) or an ISO-8601 instant (fractions of a
-- second dropped, as casting a timestamp to seconds does).
CREATE OR REPLACE TEMP MACRO text_epoch_seconds(v) AS
    COALESCE(text_bigint(v), CAST(floor(epoch(iso_instant(v))) AS BIGINT));
