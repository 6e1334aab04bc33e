{#- Helpers of the ranking feature marts (models/marts/features: post_topics, user_topic_interest,
    user_author_affinity, topic_velocity; vigil/ranking/feature_tables.py). -#}

{# Whether the topic step has written post topics (lake/post_topics). The ranking marts build
   empty without them, so a world with no topic model pays no scan of the events for them.
   Unit tests (inputs are CTEs) and parsing (not executing) take the full SQL. #}
{% macro has_post_topics() %}
  {%- set topics = source('lake', 'post_topics') -%}
  {%- if not execute or (ref('stg_lake__post_topics') | string).startswith('__dbt__cte__') -%}
    {{ return(true) }}
  {%- endif -%}
  {%- set rows = run_query("select count(*) from (select 1 from " ~ topics ~ " limit 1) as probe").rows -%}
  {{ return(rows[0][0] > 0) }}
{% endmacro %}

{# whole milliseconds since the epoch (the ranking code's time unit) #}
{% macro epoch_millis(ts) %}{{ return(adapter.dispatch('epoch_millis', 'vigil')(ts)) }}{% endmacro %}
{% macro default__epoch_millis(ts) %}unix_millis({{ ts }}){% endmacro %}
{% macro duckdb__epoch_millis(ts) %}epoch_ms({{ ts }}){% endmacro %}

{# The decay of the ranking's engagement aggregates: exp(-age / 3 days), age in milliseconds. #}
{% macro engagement_decay(age_ms) %}exp(-({{ age_ms }}) / (3.0 * 86400000.0)){% endmacro %}

{# Positive engagement weights: like 1, reply 1.5, share 2 (vigil.ranking.features.POSITIVE_WEIGHT). #}
{% macro positive_weight(action) -%}
case {{ action }} when 'like' then 1.0 when 'reply' then 1.5 when 'share' then 2.0 end
{%- endmacro %}
