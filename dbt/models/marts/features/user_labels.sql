-- Feast feature table: a user's active labels (marts/rules/active_labels) as of every moment they
-- change. One row per user and change point (a label applied, expired, cleared or superseded);
-- the row's values hold from its event_timestamp until the user's next row, so a point-in-time
-- join at t returns the labels active at t (applied_at <= t < expires_at).
with labels as (

    select * from {{ ref('active_labels') }}

),

user_labels as (

    select
        cast(entity_id as bigint) as user_id,
        label_source,
        label,
        applied_at,
        expires_at
    from labels
    where entity_type = 'user'
        and (expires_at is null or expires_at > applied_at)

),

change_points as (

    select user_id, applied_at as event_timestamp from user_labels
    union
    select user_id, expires_at as event_timestamp from user_labels where expires_at is not null

),

state as (

    select
        change_points.user_id,
        change_points.event_timestamp,
        count(
            distinct case when user_labels.label_source = 'rule' then user_labels.label end
        ) as active_rule_labels,
        max(case when user_labels.label = 'throttled' then 1 else 0 end) as is_throttled,
        max(case when user_labels.label = 'suspended' then 1 else 0 end) as is_suspended,
        max(case when user_labels.label = 'coordinated' then 1 else 0 end) as is_coordinated,
        max(case when user_labels.label_source = 'verdict' then user_labels.label end)
            as last_verdict
    from change_points
    left join user_labels
        on change_points.user_id = user_labels.user_id
        and user_labels.applied_at <= change_points.event_timestamp
        and (user_labels.expires_at is null or change_points.event_timestamp < user_labels.expires_at)
    group by change_points.user_id, change_points.event_timestamp

),

final as (

    select
        user_id,
        event_timestamp,
        cast(active_rule_labels as bigint) as active_rule_labels,
        cast(is_throttled as bigint) as is_throttled,
        cast(is_suspended as bigint) as is_suspended,
        cast(is_coordinated as bigint) as is_coordinated,
        last_verdict
    from state

)

select * from final
