{#- Helpers of the account features (models/*/accounts; docs/accounts.md, issue 21). DuckDB SQL:
    the models are enabled by the `accounts` var on an accounts world's data root. -#}

{# The trailing window of the *_7d features in days: a positive integer, or a clear error. #}
{% macro account_window_days() %}
  {%- set raw = var('account_window_days', 7) -%}
  {%- set text = (raw | string) | trim -%}
  {%- if raw is boolean or not modules.re.fullmatch('[0-9]+', text) or (text | int) < 1 -%}
    {{ exceptions.raise_compiler_error(
        "var account_window_days must be a positive integer number of days (got " ~ (raw | tojson) ~ "): pass e.g. --vars '{account_window_days: 7}'") }}
  {%- endif -%}
  {{ return(text | int) }}
{% endmacro %}

{# a post's first link (vigil.accounts.reputation.LINK_RE) and its domain #}
{% macro account_link_re() %}https?://[^\s]+{% endmacro %}
{% macro account_domain_re() %}https?://([^/\s]+){% endmacro %}

{# suspension reasons that make an account's content and fingerprints bad (BOT_REASONS) #}
{% macro account_bot_reasons() %}'bot', 'spam'{% endmacro %}

{# Lowercase, no links, @mentions, digits or punctuation; NULL when nothing is left. #}
{% macro account_normalised_text(col) -%}
nullif(trim(regexp_replace(regexp_replace(regexp_replace(lower({{ col }}), '{{ vigil.account_link_re() }}', ' ', 'g'), '@[a-z0-9_]+', ' ', 'g'), '[^a-z]+', ' ', 'g')), '')
{%- endmacro %}
