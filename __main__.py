"""meridian: one residency zone's region pair. Composition only: config -> components -> exports."""

import pulumi
import pulumi_aws as aws

from components.alerts import AlertSubscriptions, AlertSubscriptionsArgs, AlertTopic, Subscriber
from components.apidomain import ApiDomain, ApiDomainArgs
from components.apikeys import TenantApiKeys, TenantApiKeysArgs
from components.cluster import Cluster, ClusterArgs
from components.cost import CostCaps, CostCapsArgs, TenantBudget
from components.database import DatabaseRegion, ReplicatedDatabase, ReplicatedDatabaseArgs
from components.dr import BucketPair, DisasterRecovery, DisasterRecoveryArgs, DrRegion, ReplicaRoute
from components.failover import METRICS_REGION, Failover, FailoverArgs, FailoverTarget
from components.ingress import RegionIngress, RegionIngressArgs
from components.lbcontroller import LoadBalancerController, LoadBalancerControllerArgs
from components.naming import elb_prefix, silo_bucket_prefix
from components.network import RegionNetwork, RegionNetworkArgs
from components.registry import ImageRegistry, ImageRegistryArgs, RegionRegistry
from components.tagging import ProviderSettings, configure_providers, regional_provider
from components.tenant import Tenant, TenantArgs, tenant_prefix
from components.tenantidentity import TenantIdentity, TenantIdentityArgs
from components.tenantpool import TenantPool, TenantPoolArgs
from components.workload import NAMESPACE as WORKLOAD_NAMESPACE
from components.workload import SERVICE_ACCOUNT, DatabaseAccess, TenantDataAccess, Workload, WorkloadArgs, WorkloadTenant
from stackconfig import ConfigError, from_engine

stack = pulumi.get_stack()
try:
    cfg = from_engine(stack)
except ConfigError as exc:
    raise pulumi.RunError(f"invalid stack config:\n{exc}") from None

provider_settings = ProviderSettings(stack=stack, zone=cfg.zone, cost_center=cfg.cost.cost_center, account_id=cfg.aws_account_id)
configure_providers(provider_settings)

providers = {role: regional_provider(spec.region) for role, spec in cfg.regions.both}
networks: dict[str, RegionNetwork] = {}
clusters: dict[str, Cluster] = {}
for role, spec in cfg.regions.both:
    regional = pulumi.ResourceOptions(providers={"aws": providers[role]})
    networks[role] = RegionNetwork(
        f"{stack}-{spec.region}-net",
        RegionNetworkArgs(
            region=spec.region,
            cidr=str(spec.cidr),
            az_count=cfg.network.az_count,
            nat_gateways=cfg.network.nat_gateways,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
        ),
        opts=regional,
    )
    clusters[role] = Cluster(
        f"{stack}-{spec.region}-eks",
        ClusterArgs(
            region=spec.region,
            private_subnet_ids=networks[role].private_subnet_ids,
            version=cfg.cluster.version,
            node_instance_types=cfg.cluster.node_instance_types,
            node_ami_type=cfg.cluster.node_ami_type,
            node_min=cfg.cluster.node_min,
            node_desired=cfg.cluster.node_desired,
            node_max=cfg.cluster.node_max,
            vpc_id=networks[role].vpc_id,
            api_access=cfg.cluster.api_access,
            public_access_cidrs=[str(c) for c in cfg.cluster.public_access_cidrs],
            runner_cidrs=[str(c) for c in cfg.cluster.runner_cidrs],
            deploy_role_arn=cfg.cluster.deploy_role_arn,
            operator_role_arns=cfg.cluster.operator_role_arns,
            node_tags=provider_settings.tags(spec.region),
        ),
        opts=regional,
    )

database = ReplicatedDatabase(
    f"{stack}-db",
    ReplicatedDatabaseArgs(
        engine=cfg.database.engine,
        engine_version=cfg.database.engine_version,
        instance_class=cfg.database.instance_class,
        readers=cfg.database.readers,
        backup_retention_days=cfg.database.backup_retention_days,
        allocated_storage_gb=cfg.database.allocated_storage_gb,
        **{
            role: DatabaseRegion(
                region=spec.region,
                provider=providers[role],
                vpc_id=networks[role].vpc_id,
                data_subnet_ids=networks[role].data_subnet_ids,
                client_security_group_id=clusters[role].node_security_group_id,
                cidr=str(spec.cidr),
            )
            for role, spec in cfg.regions.both
        },
    ),
)

domain = ApiDomain(
    f"{stack}-api-domain",
    ApiDomainArgs(
        zone_name=cfg.failover.api_zone,
        record=cfg.failover.api_record,
        providers={spec.region: providers[role] for role, spec in cfg.regions.both},
        zone_provider=providers["primary"],
        existing_zone_id=cfg.failover.hosted_zone_id,  # None only with create_zone (two-phase bring-up)
    ),
)

registry = ImageRegistry(
    f"{stack}-images",
    ImageRegistryArgs(
        repository=cfg.workload.repository,
        **{role: RegionRegistry(region=spec.region, provider=providers[role]) for role, spec in cfg.regions.both},
    ),
)
api_keys = TenantApiKeys(f"{stack}-api-keys", TenantApiKeysArgs(tenant_ids=[t.id for t in cfg.tenants]))
tenants: dict[str, list[Tenant]] = {t.id: [] for t in cfg.tenants}
pools: dict[str, TenantPool] = {}
identities: dict[str, TenantIdentity] = {}
account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=providers["primary"])).account_id
for role, spec in cfg.regions.both:
    in_region = pulumi.ResourceOptions(providers={"aws": providers[role], "kubernetes": clusters[role].k8s_provider})
    pool = TenantPool(f"{stack}-{spec.region}-tenant-pool", TenantPoolArgs(region=spec.region), opts=in_region)
    pools[role] = pool
    silo_prefix = account_id.apply(lambda acct, region=spec.region: silo_bucket_prefix(acct, stack, region))
    identities[role] = TenantIdentity(
        f"{stack}-{spec.region}-tenant-identity",
        TenantIdentityArgs(
            region=spec.region,
            cluster_arn=clusters[role].cluster_arn,
            pool_bucket_arn=pool.bucket_arn,
            silo_bucket_prefix=silo_prefix,
            cluster_name=clusters[role].cluster_name,
            service_namespace=WORKLOAD_NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            db_secret_arn=database.app_credential.secret_arns[role],
            db_secret_key_arn=database.app_credential.kms_key_arns[role],
        ),
        opts=pulumi.ResourceOptions(providers={"aws": providers[role]}),
    )
    for tenant in cfg.tenants:
        quota = cfg.quota_of(tenant)
        tenants[tenant.id].append(
            Tenant(
                f"{stack}-{spec.region}-t-{tenant.id}",
                TenantArgs(
                    tenant_id=tenant.id,
                    plan=tenant.plan,
                    region=spec.region,
                    gql_qps=quota.gql_qps,
                    ingest_eps=quota.ingest_eps,
                    storage_gb=quota.storage_gb,
                    data_tier=tenant.data_tier,
                    pool_bucket_arn=pool.bucket_arn,
                    pool_bucket_name=pool.bucket_name,
                    cluster_name=clusters[role].cluster_name,
                    identity_role_arn=identities[role].role_arn,
                    silo_bucket_prefix=silo_prefix,
                    database_cidrs=networks[role].data_subnet_cidrs,
                    platform_namespace=WORKLOAD_NAMESPACE,
                ),
                opts=in_region,
            )
        )


def service_tenants(region_index: int, role: str) -> list[WorkloadTenant]:
    """The service's view of each tenant in one region: quotas (the stack config: their one source),
    key digest, and where its data lives with the role that reaches it."""
    out = []
    for t in cfg.tenants:
        here = tenants[t.id][region_index]
        data = TenantDataAccess(
            bucket=here.bucket_name,
            prefix=here.prefix,
            namespace=here.namespace,
            kms_key_arn=here.key_arn,
            role_arn=identities[role].role_arn,
        )
        out.append(
            WorkloadTenant(id=t.id, plan=t.plan, key_digest=api_keys.digests[t.id], data=data, **cfg.quota_of(t).model_dump())
        )
    return out


# Per region: the ALB splitting traffic between the stable and canary tracks, and the controller
# that registers each track's pods in its target group.
ingresses: dict[str, RegionIngress] = {}
controllers: dict[str, LoadBalancerController] = {}
for role, spec in cfg.regions.both:
    ingresses[role] = RegionIngress(
        elb_prefix(stack, spec.region),  # short: ELB names are 32 characters (`us-use1-lb`)
        RegionIngressArgs(
            region=spec.region,
            vpc_id=networks[role].vpc_id,
            vpc_cidr=str(spec.cidr),
            public_subnet_ids=networks[role].public_subnet_ids,
            pod_security_group_id=clusters[role].node_security_group_id,
            certificate_arn=domain.certificate_arns[spec.region],
            container_port=cfg.workload.container_port,
            deletion_protection=cfg.production,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": providers[role]}),
    )
    controllers[role] = LoadBalancerController(
        f"{stack}-{spec.region}-lb-controller",
        LoadBalancerControllerArgs(
            region=spec.region,
            cluster_name=clusters[role].cluster_name,
            cluster_arn=clusters[role].cluster_arn,
            vpc_id=networks[role].vpc_id,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": providers[role], "kubernetes": clusters[role].k8s_provider}),
    )

workloads = {
    role: Workload(
        f"{stack}-{spec.region}-api",
        WorkloadArgs(
            region=spec.region,
            role=role,
            image=pulumi.Output.concat(registry.repository_urls[spec.region], ":", cfg.workload.image_tag),
            replicas=cfg.workload.replicas,
            container_port=cfg.workload.container_port,
            canary_image=pulumi.Output.concat(
                registry.repository_urls[spec.region], ":", cfg.workload.canary_image_tag or cfg.workload.image_tag
            ),
            canary_replicas=cfg.rollout.canary_replicas,
            version=cfg.workload.image_tag,
            canary_version=cfg.workload.canary_image_tag or cfg.workload.image_tag,
            target_group_arns=ingresses[role].target_group_arns,
            binding_depends_on=[controllers[role].release],
            database=DatabaseAccess(
                writer_host=database.endpoints[role].writer,
                reader_host=database.endpoints[role].reader,
                port=database.port,
                name=database.database_name,
                user=database.app_username,
                secret_arn=database.app_credential.secret_arns[role],
                admin_user=database.master_username,
                admin_password=database.master_password,
                writer_forwards=database.endpoints[role].forwards_writes,
            ),
            tenants=service_tenants(i, role),
            cost_labels={"meridian.io/stack": stack, "meridian.io/cost-center": cfg.cost.cost_center},
            cluster_arn=clusters[role].cluster_arn,
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": clusters[role].k8s_provider}),
    )
    for i, (role, spec) in enumerate(cfg.regions.both)
}

cost_caps = CostCaps(
    f"{stack}-cost",
    CostCapsArgs(
        stack=stack,
        stack_cap_usd=cfg.cost.stack_cap_usd,
        alert_thresholds_pct=cfg.cost.alert_thresholds_pct,
        activate_cost_allocation_tags=cfg.cost.activate_cost_allocation_tags,
        tenants=[
            TenantBudget(
                tenant_id=t.id,
                monthly_budget_usd=t.monthly_budget_usd,
                role_names=[identities[role].role_name for role, _ in cfg.regions.both],
            )
            for t in cfg.tenants
        ],
    ),
    # AWS Budgets is a global service; it is managed through the primary region's provider.
    opts=pulumi.ResourceOptions(providers={"aws": providers["primary"]}),
)

failover = Failover(
    f"{stack}-failover",
    FailoverArgs(
        zone_id=domain.zone_id,
        fqdn=domain.fqdn,
        primary=FailoverTarget(
            region=cfg.regions.primary.region,
            dns_name=ingresses["primary"].dns_name,
            regional_fqdn=domain.regional_fqdns[cfg.regions.primary.region],
        ),
        secondary=FailoverTarget(
            region=cfg.regions.dr.region,
            dns_name=ingresses["dr"].dns_name,
            regional_fqdn=domain.regional_fqdns[cfg.regions.dr.region],
        ),
        health_check_interval_s=cfg.failover.health_check_interval_s,
        failure_threshold=cfg.failover.failure_threshold,
        dns_ttl_s=cfg.failover.dns_ttl_s,
        detection_bound_s=cfg.failover.detection_bound_s,
        dns_provider=providers["primary"],
        metrics_provider=regional_provider(METRICS_REGION),
    ),
)

# Alerts go somewhere: every alert topic delivers to the configured subscribers.
AlertSubscriptions(
    f"{stack}-alerts",
    AlertSubscriptionsArgs(
        topics=[
            AlertTopic(role="failover", topic_arn=failover.alarm_topic_arn, provider=regional_provider(METRICS_REGION)),
            AlertTopic(role="budgets", topic_arn=cost_caps.alert_topic_arn, provider=providers["primary"]),
        ],
        subscribers=[Subscriber(protocol=s.protocol, endpoint=s.endpoint, region=s.region) for s in cfg.alerts.subscriptions],
        provider_of=regional_provider,
    ),
)

# What replicates to the dr region: the pool bucket per pool tenant's prefix, each silo bucket whole.
# tenants[id] holds the tenant's primary-region slice first, then its dr-region slice.
pool_tenants = [t for t in cfg.tenants if t.data_tier == "pool"]
bucket_pairs = (
    [
        BucketPair(
            role="pool",
            source_bucket_arn=pools["primary"].bucket_arn,
            replica_bucket_arn=pools["dr"].bucket_arn,
            routes=[
                ReplicaRoute(
                    prefix=tenant_prefix(t.id), source_key_arn=tenants[t.id][0].key_arn, replica_key_arn=tenants[t.id][1].key_arn
                )
                for t in pool_tenants
            ],
            depends_on=[pools["primary"], pools["dr"]],
        )
    ]
    if pool_tenants
    else []
)
bucket_pairs += [
    BucketPair(
        role=f"t-{t.id}",
        source_bucket_arn=tenants[t.id][0].bucket_arn,
        replica_bucket_arn=tenants[t.id][1].bucket_arn,
        routes=[ReplicaRoute(prefix="", source_key_arn=tenants[t.id][0].key_arn, replica_key_arn=tenants[t.id][1].key_arn)],
        depends_on=tenants[t.id],
    )
    for t in cfg.tenants
    if t.data_tier == "silo"
]
disaster_recovery = DisasterRecovery(
    f"{stack}-dr",
    DisasterRecoveryArgs(
        stack=stack,
        primary=DrRegion(region=cfg.regions.primary.region, provider=providers["primary"]),
        dr=DrRegion(region=cfg.regions.dr.region, provider=providers["dr"]),
        database_engine=cfg.database.engine,
        bucket_pairs=bucket_pairs,
        backup_retention_days=cfg.dr.backup_retention_days,
        backup_schedule=cfg.dr.backup_schedule,
        vault_lock_changeable_days=cfg.dr.vault_lock_changeable_days,
        replicate_delete_markers=cfg.dr.replicate_delete_markers,
        replication_time_control=cfg.dr.replication_time_control,
        cluster_name=clusters["primary"].cluster_name,
        stop_alarm_arns=failover.alarm_arns,
        fis_duration_minutes=cfg.dr.fis_duration_minutes,
    ),
)

pulumi.export("zone", cfg.zone)
pulumi.export("api_url", f"https://{domain.fqdn}")
pulumi.export("failover_detection_bound_s", failover.detection_bound_s)
pulumi.export("failover_bound_s", cfg.failover.failover_bound_s)  # with the margin: what rto_target_s covers
pulumi.export(
    "regions",
    {
        role: {
            "region": spec.region,
            "vpc_id": networks[role].vpc_id,
            "cluster_name": clusters[role].cluster_name,
            "cluster_endpoint": clusters[role].endpoint,
            "db_writer_endpoint": database.endpoints[role].writer,
            "db_reader_endpoint": database.endpoints[role].reader,
            "api_hostname": ingresses[role].dns_name,
            # the region's own name, on its certificate: load and probes for one region (a rollout's)
            "api_url": f"https://{domain.regional_fqdns[spec.region]}",
            # what `meridian rollout` moves on AWS (meridian.targets.aws.set_canary_weight)
            "listener_arn": ingresses[role].listener_arn,
            "target_group_arns": ingresses[role].target_group_arns,
        }
        for role, spec in cfg.regions.both
    },
)
pulumi.export(
    "tenants",
    {
        t.id: {
            "plan": t.plan,
            "data_tier": t.data_tier,
            "namespace": tenants[t.id][0].namespace,
            "monthly_budget_usd": t.monthly_budget_usd,
        }
        for t in cfg.tenants
    },
)
pulumi.export("stack_budget", cost_caps.stack_budget_name)
pulumi.export(
    "dr",
    {
        "rpo_minutes": cfg.dr.rpo_minutes,
        "rto_minutes": cfg.dr.rto_minutes,
        "production": cfg.production,
        "backup_vaults": disaster_recovery.vault_arns,
        "backup_plan_id": disaster_recovery.backup_plan_id,
        "experiment_templates": disaster_recovery.experiment_template_ids,
        "health_check_ids": failover.health_check_ids,
    },
)
pulumi.export("image_repositories", registry.repository_urls)
if domain.name_servers is not None:
    pulumi.export("zone_name_servers", domain.name_servers)  # two-phase bring-up: delegate the parent to these
pulumi.export("tenant_api_keys", api_keys.keys)  # secret: hand each tenant its own
