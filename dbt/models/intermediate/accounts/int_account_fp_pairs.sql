-- Fingerprint sharing: for each pair of accounts seen with one fingerprint (device 'd:' or network
-- 'n:'), since when they share it (the later of their first sightings with it).
with first_seen as (

    select user_id, 'd:' || device_fp as fp, min(seen_at) as first_seen
    from {{ ref('stg_lake__devices') }}
    group by all
    union all
    select user_id, 'n:' || network_fp as fp, min(seen_at) as first_seen
    from {{ ref('stg_lake__devices') }}
    group by all

)

select
    a.user_id,
    b.user_id as other,
    a.fp like 'd:%' as is_device,
    greatest(a.first_seen, b.first_seen) as since
from first_seen as a
inner join first_seen as b
    on a.fp = b.fp and a.user_id <> b.user_id
