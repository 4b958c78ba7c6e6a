"""boto3 builders of compliant (and, by flag, broken) non-S3 resources, for moto-backed tests.

Each builder makes one resource the way a careful platform engineer would; flags switch
one property off so a test can show the matching control failing. Call them inside
`mock_aws()` (or against a loopback moto server).
"""
from __future__ import annotations

import json

import boto3

ACCOUNT = "123456789012"


def cmk(region: str = "us-east-1", rotate: bool = True, alias: str | None = None) -> str:
    """A customer-managed symmetric key, rotated yearly unless `rotate` is False; returns its ARN."""
    kms = boto3.client("kms", region_name=region)
    meta = kms.create_key(Description="vigil test key", KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    if rotate:
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return meta["Arn"]


def encrypted_table(name: str, region: str = "us-east-1", key_arn: str | None = None, pitr: bool = True,
                    encrypted: bool = True, tags: dict[str, str] | None = None) -> str:
    """A DynamoDB table with SSE-KMS (its own CMK unless given), PITR and tags; returns its ARN."""
    ddb = boto3.client("dynamodb", region_name=region)
    extra: dict = {}
    if encrypted:
        extra["SSESpecification"] = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn or cmk(region)}
    if tags:
        extra["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    arn = ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                           AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], **extra)["TableDescription"]["TableArn"]
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return arn


def tls_parameter_group(name: str, region: str = "us-east-1", engine: str = "postgres", cluster: bool = False, forced: bool = True) -> str:
    """A (cluster) parameter group that forces TLS for the engine's family (or explicitly does not)."""
    rds = boto3.client("rds", region_name=region)
    mysql_like = engine in ("mysql", "mariadb", "aurora-mysql")
    parameter = "require_secure_transport" if mysql_like else "rds.force_ssl"
    value = ("ON" if forced else "OFF") if mysql_like else ("1" if forced else "0")
    family = {"postgres": "postgres16", "mysql": "mysql8.0", "mariadb": "mariadb10.11",
              "aurora-postgresql": "aurora-postgresql16", "aurora-mysql": "aurora-mysql8.0"}[engine]
    change = [{"ParameterName": parameter, "ParameterValue": value, "ApplyMethod": "immediate"}]
    if cluster:
        rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=name, DBParameterGroupFamily=family, Description="TLS only")
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=name, Parameters=change)
    else:
        rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=family, Description="TLS only")
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=change)
    return name


def rds_instance(identifier: str, region: str = "us-east-1", engine: str = "postgres", force_ssl: bool = True,
                 encrypted: bool = True, retention: int = 7) -> str:
    """An RDS instance with encrypted storage, a TLS-forcing parameter group and 7-day backups; returns its ARN."""
    rds = boto3.client("rds", region_name=region)
    extra: dict = {}
    if force_ssl:
        extra["DBParameterGroupName"] = tls_parameter_group(f"{identifier}-tls", region, engine)
    return rds.create_db_instance(DBInstanceIdentifier=identifier, DBInstanceClass="db.t3.micro", Engine=engine,
                                  MasterUsername="admin_user", MasterUserPassword="not-a-real-password", AllocatedStorage=20,
                                  StorageEncrypted=encrypted, BackupRetentionPeriod=retention, **extra)["DBInstance"]["DBInstanceArn"]


def rds_cluster(identifier: str, region: str = "us-east-1", engine: str = "aurora-postgresql", force_ssl: bool = True,
                encrypted: bool = True, retention: int = 7) -> str:
    """An Aurora cluster with encrypted storage, a TLS-forcing cluster parameter group and 7-day backups."""
    rds = boto3.client("rds", region_name=region)
    extra: dict = {}
    if force_ssl:
        extra["DBClusterParameterGroupName"] = tls_parameter_group(f"{identifier}-tls", region, engine, cluster=True)
    return rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=engine, MasterUsername="admin_user",
                                 MasterUserPassword="not-a-real-password", StorageEncrypted=encrypted,
                                 BackupRetentionPeriod=retention, **extra)["DBCluster"]["DBClusterArn"]


def multi_region_trail(name: str = "vigil-audit", region: str = "us-east-1", multi_region: bool = True,
                       validation: bool = True, logging: bool = True) -> str:
    """A multi-region trail with log file validation, logging to its own bucket; returns its ARN."""
    bucket = f"{name}-trail-logs-{region}"
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/*"}]}))
    cloudtrail = boto3.client("cloudtrail", region_name=region)
    arn = cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi_region,
                                  EnableLogFileValidation=validation)["TrailARN"]
    if logging:
        cloudtrail.start_logging(Name=name)
    return arn


def ebs_encryption_by_default(regions: list[str]) -> None:
    for region in regions:
        boto3.client("ec2", region_name=region).enable_ebs_encryption_by_default()


def backup_vaults_and_plan(primary: str = "us-east-1", backup: str = "us-west-2", name: str = "vigil",
                           delete_after_days: int | None = 365, schedule: str = "cron(0 5 ? * * *)") -> dict[str, str]:
    """A CMK-encrypted vault in each region and a daily plan that copies to the backup region.

    The selection (which resources the plan picks) is not created: moto does not implement
    CreateBackupSelection. Returns the vault ARNs and the plan id.
    """
    vaults = {}
    for label, region in (("primary", primary), ("backup", backup)):
        client = boto3.client("backup", region_name=region)
        vaults[label] = client.create_backup_vault(BackupVaultName=f"{name}-{label}", EncryptionKeyArn=cmk(region))["BackupVaultArn"]
    lifecycle = {"DeleteAfterDays": delete_after_days} if delete_after_days is not None else {}
    rule: dict = {"RuleName": "daily", "TargetBackupVaultName": f"{name}-primary", "ScheduleExpression": schedule,
                  "CopyActions": [{"DestinationBackupVaultArn": vaults["backup"], **({"Lifecycle": lifecycle} if lifecycle else {})}]}
    if lifecycle:
        rule["Lifecycle"] = lifecycle
    plan = boto3.client("backup", region_name=primary).create_backup_plan(BackupPlan={"BackupPlanName": f"{name}-daily", "Rules": [rule]})
    return {"primary_vault": vaults["primary"], "backup_vault": vaults["backup"], "plan_id": plan["BackupPlanId"]}


def compliant_services(policy) -> dict[str, str]:
    """Everything the non-S3 controls want for `policy` (a vigil Policy): its tables (encrypted,
    PITR, tagged `backup=daily` for a tag-based selection), EBS default encryption in every region
    in scope, a multi-region trail and the backup vaults and plan. Returns the ARNs made."""
    primary, backup = policy.regions.primary, policy.regions.backup
    made = {f"table:{name}": encrypted_table(name, primary, tags={"backup": "daily"}) for name in sorted(policy.data_tables)}
    ebs_encryption_by_default(policy.regions_in_scope)
    made["trail"] = multi_region_trail(region=primary)
    made.update(backup_vaults_and_plan(primary, backup))
    return made
