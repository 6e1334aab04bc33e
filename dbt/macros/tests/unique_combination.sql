{# Generic test: the columns together are the model's key (no duplicate combination, no nulls). #}
{% test unique_key_columns(model, columns) %}

select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

union all

select {{ columns | join(', ') }}, 1 as copies
from {{ model }}
where {% for column in columns %}{{ column }} is null{{ ' or ' if not loop.last }}{% endfor %}

{% endtest %}
