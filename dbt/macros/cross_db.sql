{#- Small cross-database helpers (DuckDB and Spark) that dbt's own cross-db macros do not cover
    with the types we need (dbt.dateadd returns timestamps on Spark, not dates). -#}

{# The timestamp type of the warehouse: DuckDB keeps time-zone-aware UTC instants (the session
   runs with TimeZone=UTC, see profiles.yml); Spark's timestamp is an instant in the session zone (UTC). #}
{% macro timestamp_type() %}{{ return(adapter.dispatch('timestamp_type', 'vigil')()) }}{% endmacro %}
{% macro default__timestamp_type() %}timestamp{% endmacro %}
{% macro duckdb__timestamp_type() %}timestamptz{% endmacro %}

{# date + n days, still a date #}
{% macro add_days(date_expr, n) %}{{ return(adapter.dispatch('add_days', 'vigil')(date_expr, n)) }}{% endmacro %}
{% macro default__add_days(date_expr, n) %}date_add({{ date_expr }}, cast({{ n }} as int)){% endmacro %}
{% macro duckdb__add_days(date_expr, n) %}cast({{ date_expr }} + cast({{ n }} as integer) as date){% endmacro %}

{# midnight UTC at the start of a date, as the warehouse timestamp type #}
{% macro day_start(date_expr) %}cast({{ date_expr }} as {{ vigil.timestamp_type() }}){% endmacro %}

{# seconds since the epoch, as a number #}
{% macro epoch_seconds(ts) %}{{ return(adapter.dispatch('epoch_seconds', 'vigil')(ts)) }}{% endmacro %}
{% macro default__epoch_seconds(ts) %}(unix_micros({{ ts }}) / 1000000.0){% endmacro %}
{% macro duckdb__epoch_seconds(ts) %}(epoch_us({{ ts }}) / 1000000.0){% endmacro %}

{# whole minutes since the epoch (an integer key: cheaper to count distinct than a timestamp) #}
{% macro epoch_minute(ts) %}{{ return(adapter.dispatch('epoch_minute', 'vigil')(ts)) }}{% endmacro %}
{% macro default__epoch_minute(ts) %}cast(floor(unix_micros({{ ts }}) / 60000000) as bigint){% endmacro %}
{% macro duckdb__epoch_minute(ts) %}(epoch_us({{ ts }}) // 60000000){% endmacro %}

{# one row per integer k in [start, stop] from a single-row relation: select {{ series('0', 'n') }} as k from x #}
{% macro integer_series(start, stop) %}{{ return(adapter.dispatch('integer_series', 'vigil')(start, stop)) }}{% endmacro %}
{% macro default__integer_series(start, stop) %}explode(sequence(cast({{ start }} as bigint), cast({{ stop }} as bigint))){% endmacro %}
{% macro duckdb__integer_series(start, stop) %}unnest(generate_series(cast({{ start }} as bigint), cast({{ stop }} as bigint))){% endmacro %}

{# case-insensitive regular expression test; the pattern must not need backslashes
   (Spark unescapes string literals, DuckDB does not) #}
{% macro regex_matches(expr, pattern) %}{{ return(adapter.dispatch('regex_matches', 'vigil')(expr, pattern)) }}{% endmacro %}
{% macro default__regex_matches(expr, pattern) %}(lower({{ expr }}) rlike '{{ pattern }}'){% endmacro %}
{% macro duckdb__regex_matches(expr, pattern) %}regexp_matches(lower({{ expr }}), '{{ pattern }}'){% endmacro %}

{# Epoch milliseconds (bigint) -> timestamp: the Community Notes download's time columns. #}
{% macro from_epoch_millis(ms) %}{{ return(adapter.dispatch('from_epoch_millis', 'vigil')(ms)) }}{% endmacro %}
{% macro default__from_epoch_millis(ms) %}timestamp_millis(cast({{ ms }} as bigint)){% endmacro %}
{% macro duckdb__from_epoch_millis(ms) %}cast(epoch_ms(cast({{ ms }} as bigint)) as timestamptz){% endmacro %}
