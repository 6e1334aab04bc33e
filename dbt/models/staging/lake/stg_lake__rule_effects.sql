-- The rules engine's effects, one row per effect (effect_id, unique in the lake already; deduped
-- again here like every log). Shadow effects (a rule in shadow mode) are logged, never applied.
with source as (

    select * from {{ source('lake', 'rule_effects') }}

),

renamed as (

    select
        cast(effect_id as string) as effect_id,
        cast(seq as bigint) as effect_seq,
        cast(rule as string) as rule_name,
        cast(rule_version as bigint) as rule_version,
        cast(mode as string) as rule_mode,
        cast(mode = 'shadow' as boolean) as is_shadow,
        cast(effect as string) as effect,
        cast(entity as string) as entity_type,
        cast(entity_id as string) as entity_id,
        cast(label as string) as label,
        cast(event_ts as {{ vigil.timestamp_type() }}) as fired_at,
        cast(expires_at as {{ vigil.timestamp_type() }}) as expires_at,
        cast(event_id as string) as event_id,
        cast(source_file as string) as source_file,
        cast(source_line as bigint) as source_line
    from source

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by effect_id order by source_file, source_line
        ) as copy_number
    from renamed

),

final as (

    select
        effect_id,
        effect_seq,
        rule_name,
        rule_version,
        rule_mode,
        is_shadow,
        effect,
        entity_type,
        entity_id,
        label,
        fired_at,
        expires_at,
        event_id,
        source_file,
        source_line
    from deduplicated
    where copy_number = 1

)

select * from final
