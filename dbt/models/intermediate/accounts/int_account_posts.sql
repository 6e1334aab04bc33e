-- The window's posts and replies with text: normalised text and first link, per (day, account).
select
    day,
    user_id,
    {{ vigil.account_normalised_text('text') }} as norm,
    regexp_extract(text, '{{ vigil.account_link_re() }}') as link
from {{ ref('int_account_events_windowed') }}
where action in ('post', 'reply') and text is not null
