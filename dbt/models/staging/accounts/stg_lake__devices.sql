-- Login fingerprints: which account was seen with which device and network fingerprint, when.
select
    cast(seen_id as string) as seen_id,
    cast(user_id as bigint) as user_id,
    cast(seen_at as {{ vigil.timestamp_type() }}) as seen_at,
    cast(device_fp as string) as device_fp,
    cast(network_fp as string) as network_fp
from {{ source('lake', 'devices') }}
