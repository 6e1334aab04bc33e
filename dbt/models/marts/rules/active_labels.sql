-- Labels on entities as intervals [applied_at, expires_at), one row per label applied: a label is
-- active at time t iff applied_at <= t and (expires_at is null or t < expires_at).
-- - Rules: every applied (live, not shadow) effect that sets a label (label, throttle ->
--   throttled, suspend -> suspended), from the event time it fired at to its expiry (null: none).
--   A label set again while active is a second row: the label is active while either row is.
-- - Reviewers' verdicts on accounts: the verdict's label (cleared, confirmed_<reason>) on the user,
--   from the verdict until the account's next verdict (the latest verdict wins; at the same
--   instant the later line).
-- - A "cleared" verdict ends the rule labels on its account active at that moment (expires_at =
--   the verdict's time, ended_by = cleared); labels applied later stand. The stream engine applies
--   the same rule and logs an 'unlabel' effect per label it ends (event_id = the verdict's id):
--   those lines end labels, they are not labels, so they are left out here.
with effects as (

    select * from {{ ref('stg_lake__rule_effects') }}

),

verdicts as (

    select * from {{ ref('stg_lake__account_verdicts') }}

),

rule_labels as (

    select
        effect_id as label_id,
        'rule' as label_source,
        entity_type,
        entity_id,
        label,
        rule_name,
        rule_version,
        fired_at as applied_at,
        expires_at as rule_expires_at
    from effects
    where not is_shadow
        and label is not null
        and effect != 'unlabel'

),

verdict_labels as (

    select
        verdict_id as label_id,
        'verdict' as label_source,
        'user' as entity_type,
        cast(user_id as string) as entity_id,
        verdict_label as label,
        'account_review' as rule_name,
        cast(null as bigint) as rule_version,
        reviewed_at as applied_at,
        lead(reviewed_at) over (
            partition by user_id order by reviewed_at, source_file, source_line
        ) as expires_at
    from verdicts

),

clears as (

    select
        entity_id,
        applied_at as cleared_at
    from verdict_labels
    where label = 'cleared'

),

rule_labels_cleared as (

    select
        rule_labels.label_id,
        min(clears.cleared_at) as cleared_at
    from rule_labels
    inner join clears
        on rule_labels.entity_type = 'user'
        and clears.entity_id = rule_labels.entity_id
        and clears.cleared_at >= rule_labels.applied_at
        and (rule_labels.rule_expires_at is null or clears.cleared_at < rule_labels.rule_expires_at)
    group by rule_labels.label_id

),

rule_labels_ended as (

    select
        rule_labels.label_id,
        rule_labels.label_source,
        rule_labels.entity_type,
        rule_labels.entity_id,
        rule_labels.label,
        rule_labels.rule_name,
        rule_labels.rule_version,
        rule_labels.applied_at,
        coalesce(rule_labels_cleared.cleared_at, rule_labels.rule_expires_at) as expires_at,
        case
            when rule_labels_cleared.cleared_at is not null then 'cleared'
            when rule_labels.rule_expires_at is not null then 'expiry'
        end as ended_by
    from rule_labels
    left join rule_labels_cleared
        on rule_labels.label_id = rule_labels_cleared.label_id

),

verdict_labels_ended as (

    select
        label_id,
        label_source,
        entity_type,
        entity_id,
        label,
        rule_name,
        rule_version,
        applied_at,
        expires_at,
        case when expires_at is not null then 'next_verdict' end as ended_by
    from verdict_labels

),

final as (

    select * from rule_labels_ended
    union all
    select * from verdict_labels_ended

)

select * from final
