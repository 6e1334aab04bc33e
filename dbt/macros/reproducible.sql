{#- Reproducible float aggregates (docs/warehouse.md "Reproducible builds"). DuckDB's parallel hash
    aggregation (and Spark's partial aggregation) adds a group's doubles in an order set by thread
    scheduling, so sum() of a DOUBLE expression can differ in the last bit between two builds of
    the same input. ordered_sum adds the group's values in ascending order instead: the same bits
    on any thread count. Sums of integers are exact in any order and keep plain sum(). -#}
{% macro ordered_sum(expr) %}{{ return(adapter.dispatch('ordered_sum', 'vigil')(expr)) }}{% endmacro %}
{% macro default__ordered_sum(expr) -%}
aggregate(array_sort(collect_list(cast({{ expr }} as double))), cast(0 as double), (acc, x) -> acc + x)
{%- endmacro %}
{% macro duckdb__ordered_sum(expr) -%}
list_sum(list_sort(list(cast({{ expr }} as double))))
{%- endmacro %}
