-- How many users have a UAM in each bucket [k*S, (k+1)*S) for S = var('uam_interval') minutes,
-- for every k from 0 to the highest non-empty bucket (empty buckets are rows with users = 0).
-- With S = 1 this is LeetCode 1817 ("Finding the Users Active Minutes"), starting at UAM 0.
{%- set interval = vigil.uam_interval() %}

with uam as (

    select * from {{ ref('user_active_minutes') }}

),

bucketed as (

    select
        cast(floor(uam / {{ interval }}) as bigint) as bucket,
        count(*) as users
    from uam
    group by 1

),

bounds as (

    select max(bucket) as top_bucket
    from bucketed

),

buckets as (

    select {{ vigil.integer_series('0', 'top_bucket') }} as bucket
    from bounds

),

final as (

    select
        cast(buckets.bucket * {{ interval }} as bigint) as lower,
        cast((buckets.bucket + 1) * {{ interval }} as bigint) as upper,
        cast(coalesce(bucketed.users, 0) as bigint) as users
    from buckets
    left join bucketed
        on bucketed.bucket = buckets.bucket

)

select * from final
