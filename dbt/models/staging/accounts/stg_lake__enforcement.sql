-- The enforcement log (the platform's own record of suspensions; never truth), typed.
select
    cast(enforcement_id as string) as enforcement_id,
    cast(user_id as bigint) as user_id,
    cast(action as string) as enforcement_action,
    cast(reason as string) as reason,
    cast(enforced_at as {{ vigil.timestamp_type() }}) as enforced_at
from {{ source('lake', 'enforcement') }}
