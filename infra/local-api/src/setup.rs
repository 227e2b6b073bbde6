//! Idempotent set-up of the emulator: the table exactly as `template.yaml`
//! declares it (keys, indexes, TTL) and the SNS platform applications that, in
//! AWS, the operator creates with `infra/platform-apps.sh`.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_yaml::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, BoxError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("template table: {key} missing").into())
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, BoxError> {
    list(v, "KeySchema")
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName")?)
                .key_type(KeyType::from(text(k, "KeyType")?))
                .build()?)
        })
        .collect()
}

/// Creates the table from the template's properties unless it exists.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<(), BoxError> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => return Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) => {}
        Err(e) => {
            return Err(format!(
                "DescribeTable: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
            .into())
        }
    }
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(props)?));
    for a in list(props, "AttributeDefinitions") {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(a, "AttributeType")?))
                .build()?,
        );
    }
    for g in list(props, "GlobalSecondaryIndexes") {
        let projection = g
            .get("Projection")
            .and_then(|p| p.get("ProjectionType"))
            .and_then(Value::as_str)
            .unwrap_or("ALL");
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(g, "IndexName")?)
                .set_key_schema(Some(key_schema(g)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection))
                        .build(),
                )
                .build()?,
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(())
        }
        Err(e) => {
            return Err(format!(
                "CreateTable: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
            .into())
        }
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(ttl, "AttributeName")?)
                    .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(true))
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "UpdateTimeToLive: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
    }
    Ok(())
}

/// Returns the ARN of the platform application `name`, creating it if needed.
pub async fn ensure_platform_application(
    client: &aws_sdk_sns::Client,
    name: &str,
    platform: &str,
) -> Result<String, BoxError> {
    let mut next = None;
    loop {
        let out = client
            .list_platform_applications()
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ListPlatformApplications: {}",
                    aws_sdk_sns::error::DisplayErrorContext(e)
                )
            })?;
        for app in out.platform_applications() {
            if let Some(arn) = app.platform_application_arn() {
                if arn.ends_with(&format!(":app/{platform}/{name}")) {
                    return Ok(arn.to_string());
                }
            }
        }
        match out.next_token {
            Some(t) if !t.is_empty() => next = Some(t),
            _ => break,
        }
    }
    // The emulator accepts any credential; these are placeholders, not secrets.
    let out = client
        .create_platform_application()
        .name(name)
        .platform(platform)
        .attributes("PlatformCredential", "local-emulator-placeholder")
        .attributes("PlatformPrincipal", "local-emulator-placeholder")
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreatePlatformApplication: {}",
                aws_sdk_sns::error::DisplayErrorContext(e)
            )
        })?;
    out.platform_application_arn
        .ok_or_else(|| "CreatePlatformApplication returned no ARN".into())
}

/// Returns the ARN of the secret `name` that hides sign-up sources (what the
/// stack's `SourceKeySecret` is in AWS), creating it with a random key if
/// needed. Routers started at once on one emulator share it.
pub async fn ensure_source_key_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<String, BoxError> {
    use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
    let described = client.describe_secret().secret_id(name).send().await;
    match described {
        Ok(out) => return Ok(out.arn().unwrap_or(name).to_string()),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeSecretError::ResourceNotFoundException(_))
            ) => {}
        Err(e) => {
            return Err(format!(
                "DescribeSecret: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
            .into())
        }
    }
    let created = client
        .create_secret()
        .name(name)
        .secret_string(push_core::secrets::random_hex(32))
        .send()
        .await;
    match created {
        Ok(out) => Ok(out.arn().unwrap_or(name).to_string()),
        // Another router made it meanwhile: that one.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateSecretError::ResourceExistsException(_))
            ) =>
        {
            let out = client
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DescribeSecret: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    )
                })?;
            Ok(out.arn().unwrap_or(name).to_string())
        }
        Err(e) => Err(format!(
            "CreateSecret: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
        )
        .into()),
    }
}
