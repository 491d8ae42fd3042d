-- depends: 0005_policies
-- The contract as data. `aosdb check` and the pgTAP tests read these tables,
-- so changing the contract is one reviewed row, not a scattered edit.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

CREATE TABLE aos.contract_domains (
    domain text NOT NULL,
    schema_name text NOT NULL,
    question text NOT NULL,
    CONSTRAINT contract_domains_pkey PRIMARY KEY (domain),
    CONSTRAINT contract_domains_schema_unique UNIQUE (schema_name)
);
COMMENT ON TABLE aos.contract_domains IS
    'Contract: the domains, the schema each lives in and the question it answers. platform is the shared '
    'core (tenants, contract, outbox).';
COMMENT ON COLUMN aos.contract_domains.domain IS 'Domain name.';
COMMENT ON COLUMN aos.contract_domains.schema_name IS 'Schema holding the domain''s tables and functions.';
COMMENT ON COLUMN aos.contract_domains.question IS 'The one question the domain answers.';

INSERT INTO aos.contract_domains (domain, schema_name, question) VALUES
    ('activity', 'activity', 'What ran, what is running?'),
    ('incidents', 'incidents', 'What went wrong?'),
    ('policies', 'policies', 'What rules govern behaviour?'),
    ('platform', 'aos', 'Who are the tenants, what is the contract, what happened (outbox)?');

CREATE TABLE aos.contract_tables (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    domain text NOT NULL,
    kind text NOT NULL,
    tenant_scoped boolean NOT NULL,
    CONSTRAINT contract_tables_pkey PRIMARY KEY (schema_name, table_name),
    CONSTRAINT contract_tables_domain_fk FOREIGN KEY (domain) REFERENCES aos.contract_domains (domain),
    CONSTRAINT contract_tables_kind_valid CHECK (kind IN ('table', 'reference', 'materialized_view', 'view', 'outbox'))
);
COMMENT ON TABLE aos.contract_tables IS
    'Contract: which domain owns which table or view. Only the owning domain''s engines and roles may write it.';
COMMENT ON COLUMN aos.contract_tables.schema_name IS 'Schema of the table.';
COMMENT ON COLUMN aos.contract_tables.table_name IS 'Table or view name.';
COMMENT ON COLUMN aos.contract_tables.domain IS 'Owning domain.';
COMMENT ON COLUMN aos.contract_tables.kind IS
    'table (domain data), reference (shared seeded data), materialized_view (analytics), view (tenant-filtered view of '
    'an analytics view) or outbox (events every engine appends to).';
COMMENT ON COLUMN aos.contract_tables.tenant_scoped IS
    'True when rows belong to a tenant: tenant-first keys and row-level security.';

INSERT INTO aos.contract_tables (schema_name, table_name, domain, kind, tenant_scoped) VALUES
    ('aos', 'tenants', 'platform', 'table', TRUE),
    ('activity', 'runs', 'activity', 'table', TRUE),
    ('activity', 'aos_traces', 'activity', 'table', TRUE),
    ('activity', 'aos_trace_steps', 'activity', 'table', TRUE),
    ('activity', 'v_runs_o2', 'activity', 'materialized_view', TRUE),
    ('incidents', 'incidents', 'incidents', 'table', TRUE),
    ('incidents', 'incident_events', 'incidents', 'table', TRUE),
    ('incidents', 'incident_evidence', 'incidents', 'table', TRUE),
    ('incidents', 'failure_classes', 'incidents', 'reference', FALSE),
    ('incidents', 'v_incidents_o2', 'incidents', 'materialized_view', TRUE),
    ('policies', 'policy_proposals', 'policies', 'table', TRUE),
    ('policies', 'policy_rules', 'policies', 'table', TRUE),
    ('policies', 'prevention_records', 'policies', 'table', TRUE),
    ('policies', 'default_guardrails', 'policies', 'reference', FALSE);

CREATE TABLE aos.contract_links (
    link_name text NOT NULL,
    from_schema text NOT NULL,
    from_table text NOT NULL,
    from_columns text[] NOT NULL,
    to_schema text NOT NULL,
    to_table text NOT NULL,
    to_columns text[] NOT NULL,
    description text NOT NULL,
    CONSTRAINT contract_links_pkey PRIMARY KEY (link_name),
    CONSTRAINT contract_links_from_fk FOREIGN KEY (from_schema, from_table)
        REFERENCES aos.contract_tables (schema_name, table_name),
    CONSTRAINT contract_links_to_fk FOREIGN KEY (to_schema, to_table)
        REFERENCES aos.contract_tables (schema_name, table_name),
    CONSTRAINT contract_links_tenant_first CHECK (from_columns[1] = 'tenant_id' AND to_columns[1] = 'tenant_id'),
    CONSTRAINT contract_links_same_arity CHECK (cardinality(from_columns) = cardinality(to_columns))
);
COMMENT ON TABLE aos.contract_links IS
    'Contract: the cross-domain links. Each must be a real, tenant-first foreign key in the live catalog (XD-002).';
COMMENT ON COLUMN aos.contract_links.link_name IS 'Name of the link (also the foreign key constraint name).';
COMMENT ON COLUMN aos.contract_links.from_schema IS 'Schema of the referencing table.';
COMMENT ON COLUMN aos.contract_links.from_table IS 'Referencing table.';
COMMENT ON COLUMN aos.contract_links.from_columns IS 'Referencing columns, tenant_id first.';
COMMENT ON COLUMN aos.contract_links.to_schema IS 'Schema of the referenced table.';
COMMENT ON COLUMN aos.contract_links.to_table IS 'Referenced table.';
COMMENT ON COLUMN aos.contract_links.to_columns IS 'Referenced columns, tenant_id first.';
COMMENT ON COLUMN aos.contract_links.description IS 'What the link means.';

INSERT INTO aos.contract_links (link_name, from_schema, from_table, from_columns, to_schema, to_table, to_columns, description) VALUES
    ('incidents_source_run_fk', 'incidents', 'incidents', '{tenant_id,source_run_id}',
     'activity', 'runs', '{tenant_id,run_id}', 'The run whose failure caused the incident.'),
    ('incidents_llm_run_fk', 'incidents', 'incidents', '{tenant_id,llm_run_id}',
     'activity', 'runs', '{tenant_id,id}', 'The same run, by its uuid.'),
    ('policy_proposals_triggering_incident_fk', 'policies', 'policy_proposals', '{tenant_id,triggering_incident_id}',
     'incidents', 'incidents', '{tenant_id,id}', 'The incident that triggered the proposal.'),
    ('policy_proposals_triggering_run_fk', 'policies', 'policy_proposals', '{tenant_id,triggering_run_id}',
     'activity', 'runs', '{tenant_id,run_id}', 'The run whose failure triggered the proposal.'),
    ('prevention_records_run_fk', 'policies', 'prevention_records', '{tenant_id,run_id}',
     'activity', 'runs', '{tenant_id,run_id}', 'The run that violated a rule or guardrail.'),
    ('incident_evidence_run_fk', 'incidents', 'incident_evidence', '{tenant_id,run_id}',
     'activity', 'runs', '{tenant_id,run_id}', 'The run a piece of evidence was taken from.');

CREATE TABLE aos.contract_roles (
    role_name text NOT NULL,
    writes_domain text,
    tenant_scoped boolean NOT NULL,
    description text NOT NULL,
    CONSTRAINT contract_roles_pkey PRIMARY KEY (role_name),
    CONSTRAINT contract_roles_domain_fk FOREIGN KEY (writes_domain) REFERENCES aos.contract_domains (domain)
);
COMMENT ON TABLE aos.contract_roles IS
    'Contract: the group roles, the one domain each may write, and whether row-level security scopes it to one tenant.';
COMMENT ON COLUMN aos.contract_roles.role_name IS 'Group role (NOLOGIN).';
COMMENT ON COLUMN aos.contract_roles.writes_domain IS
    'The only domain whose tables the role may write directly; null: none (it acts through functions) or '
    'all (the owner).';
COMMENT ON COLUMN aos.contract_roles.tenant_scoped IS
    'True when the role sees only the tenant of aos.current_tenant().';
COMMENT ON COLUMN aos.contract_roles.description IS 'What the role may do.';

INSERT INTO aos.contract_roles (role_name, writes_domain, tenant_scoped, description) VALUES
    ('aos_owner', NULL, FALSE, 'Owns every object; runs migrations.'),
    ('aos_worker', 'activity', FALSE, 'WorkerRunner: inserts and updates runs and traces, inserts steps, '
        'executes the activity ingestion functions.'),
    ('aos_incident_engine', 'incidents', FALSE, 'Owns the IncidentEngine functions; writes only incidents tables.'),
    ('aos_proposal_engine', 'policies', FALSE, 'Owns the PolicyProposalEngine functions; writes only policy_proposals.'),
    ('aos_policy_engine', 'policies', FALSE, 'Owns the PolicyEngine functions; writes policy_rules and prevention_records, '
        'and activity.runs.policy_violation only.'),
    ('aos_operator', NULL, TRUE, 'Executes the incident and proposal/rule action functions for its own tenant.'),
    ('aos_api', NULL, TRUE, 'Executes the api facade functions for its own tenant; writes nothing.'),
    ('aos_bi', NULL, FALSE, 'Reads the analytics views.'),
    ('aos_scenario', 'activity', TRUE, 'SDSR runner: what aos_worker and aos_operator may, nothing more, within its scenario''s tenant.');

-- Every table privilege a contract role holds. The catalog must match it
-- exactly: a grant missing here or in the catalog is a contract violation.
CREATE TABLE aos.contract_grants (
    role_name text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    privilege text NOT NULL,
    column_names text[],
    CONSTRAINT contract_grants_pkey PRIMARY KEY (role_name, schema_name, table_name, privilege),
    CONSTRAINT contract_grants_role_fk FOREIGN KEY (role_name) REFERENCES aos.contract_roles (role_name),
    CONSTRAINT contract_grants_table_fk FOREIGN KEY (schema_name, table_name)
        REFERENCES aos.contract_tables (schema_name, table_name),
    CONSTRAINT contract_grants_privilege_valid CHECK (
        privilege IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
    )
);
COMMENT ON TABLE aos.contract_grants IS
    'Contract: every table privilege of every contract role (the owner excepted). The live catalog must '
    'match it exactly.';
COMMENT ON COLUMN aos.contract_grants.role_name IS 'Grantee.';
COMMENT ON COLUMN aos.contract_grants.schema_name IS 'Schema of the table.';
COMMENT ON COLUMN aos.contract_grants.table_name IS 'Table or view.';
COMMENT ON COLUMN aos.contract_grants.privilege IS 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER.';
COMMENT ON COLUMN aos.contract_grants.column_names IS 'Null: on the whole table; else only on these columns.';

INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names)
SELECT g.role_name, g.schema_name, g.table_name, p.privilege, g.column_names
FROM (VALUES
    ('aos_worker', 'aos', 'tenants', '{SELECT}'::text[], NULL::text[]),
    ('aos_scenario', 'aos', 'tenants', '{SELECT}', NULL),
    ('aos_worker', 'activity', 'runs', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_scenario', 'activity', 'runs', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_policy_engine', 'activity', 'runs', '{SELECT}', NULL),
    ('aos_worker', 'activity', 'aos_traces', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_scenario', 'activity', 'aos_traces', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_policy_engine', 'activity', 'aos_traces', '{SELECT}', NULL),
    ('aos_worker', 'activity', 'aos_trace_steps', '{SELECT,INSERT}', NULL),
    ('aos_scenario', 'activity', 'aos_trace_steps', '{SELECT,INSERT}', NULL),
    ('aos_policy_engine', 'activity', 'aos_trace_steps', '{SELECT}', NULL),
    ('aos_incident_engine', 'incidents', 'failure_classes', '{SELECT}', NULL),
    ('aos_proposal_engine', 'incidents', 'failure_classes', '{SELECT}', NULL),
    ('aos_policy_engine', 'incidents', 'failure_classes', '{SELECT}', NULL),
    ('aos_incident_engine', 'incidents', 'incidents', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_proposal_engine', 'incidents', 'incidents', '{SELECT}', NULL),
    ('aos_incident_engine', 'incidents', 'incident_events', '{SELECT,INSERT}', NULL),
    ('aos_incident_engine', 'incidents', 'incident_evidence', '{SELECT,INSERT}', NULL),
    ('aos_policy_engine', 'policies', 'default_guardrails', '{SELECT}', NULL),
    ('aos_proposal_engine', 'policies', 'policy_proposals', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_policy_engine', 'policies', 'policy_proposals', '{SELECT}', NULL),
    ('aos_policy_engine', 'policies', 'policy_rules', '{SELECT,INSERT,UPDATE}', NULL),
    ('aos_policy_engine', 'policies', 'prevention_records', '{SELECT,INSERT}', NULL)
) AS g (role_name, schema_name, table_name, privileges, column_names)
CROSS JOIN LATERAL unnest(g.privileges) AS p (privilege);

INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names) VALUES
    ('aos_policy_engine', 'activity', 'runs', 'UPDATE', '{policy_violation}');

CREATE TABLE aos.contract_effects (
    cause text NOT NULL,
    effect text NOT NULL,
    engine text NOT NULL,
    engine_role text NOT NULL,
    effect_schema text NOT NULL,
    effect_table text NOT NULL,
    effect_columns text[],
    CONSTRAINT contract_effects_pkey PRIMARY KEY (cause, effect),
    CONSTRAINT contract_effects_engine_role_fk FOREIGN KEY (engine_role) REFERENCES aos.contract_roles (role_name),
    CONSTRAINT contract_effects_table_fk FOREIGN KEY (effect_schema, effect_table)
        REFERENCES aos.contract_tables (schema_name, table_name)
);
COMMENT ON TABLE aos.contract_effects IS
    'Contract: the propagation table. Which engine creates which effect of which cause, inside the '
    'causing transaction.';
COMMENT ON COLUMN aos.contract_effects.cause IS 'What happened.';
COMMENT ON COLUMN aos.contract_effects.effect IS 'What the engine creates.';
COMMENT ON COLUMN aos.contract_effects.engine IS 'Engine name.';
COMMENT ON COLUMN aos.contract_effects.engine_role IS 'Role that owns the engine functions.';
COMMENT ON COLUMN aos.contract_effects.effect_schema IS 'Schema of the table the effect is written to.';
COMMENT ON COLUMN aos.contract_effects.effect_table IS 'Table the effect is written to.';
COMMENT ON COLUMN aos.contract_effects.effect_columns IS 'Null: new rows; else only these columns are updated.';

INSERT INTO aos.contract_effects (cause, effect, engine, engine_role, effect_schema, effect_table, effect_columns) VALUES
    ('run reaches failed', 'incident (+ detected event)', 'IncidentEngine', 'aos_incident_engine', 'incidents', 'incidents', NULL),
    ('incident with severity high or '
        'critical', 'proposal, status pending', 'PolicyProposalEngine', 'aos_proposal_engine', 'policies', 'policy_proposals', NULL),
    ('proposal approved', 'rule (source = proposal)', 'PolicyEngine', 'aos_policy_engine', 'policies', 'policy_rules', NULL),
    ('rule or guardrail violated', 'prevention record', 'PolicyEngine', 'aos_policy_engine', 'policies', 'prevention_records', NULL),
    ('rule or guardrail violated', 'runs.policy_violation = '
        'true', 'PolicyEngine', 'aos_policy_engine', 'activity', 'runs', '{policy_violation}');

CREATE TABLE aos.contract_facades (
    function_name text NOT NULL,
    endpoint text NOT NULL,
    domain text NOT NULL,
    CONSTRAINT contract_facades_pkey PRIMARY KEY (function_name),
    CONSTRAINT contract_facades_endpoint_unique UNIQUE (endpoint),
    CONSTRAINT contract_facades_domain_fk FOREIGN KEY (domain) REFERENCES aos.contract_domains (domain),
    CONSTRAINT contract_facades_in_api_schema CHECK (function_name LIKE 'api.%')
);
COMMENT ON TABLE aos.contract_facades IS 'Contract: the read-only api facade functions and the endpoint each serves.';
COMMENT ON COLUMN aos.contract_facades.function_name IS 'Schema-qualified function name.';
COMMENT ON COLUMN aos.contract_facades.endpoint IS 'HTTP endpoint the function serves.';
COMMENT ON COLUMN aos.contract_facades.domain IS 'Domain the endpoint belongs to.';

INSERT INTO aos.contract_facades (function_name, endpoint, domain) VALUES
    ('api.activity_runs', 'GET /activity/runs', 'activity'),
    ('api.activity_run', 'GET /activity/runs/{id}', 'activity'),
    ('api.activity_run_evidence', 'GET /activity/runs/{id}/evidence', 'activity'),
    ('api.incidents', 'GET /incidents', 'incidents'),
    ('api.incident', 'GET /incidents/{id}', 'incidents'),
    ('api.incident_evidence', 'GET /incidents/{id}/evidence', 'incidents'),
    ('api.policy_proposals', 'GET /policy-proposals', 'policies'),
    ('api.policy_proposal', 'GET /policy-proposals/{id}', 'policies');

-- What each facade may read. A row whose table belongs to another domain
-- than the facade's is an endpoint allowed to cross domains.
CREATE TABLE aos.contract_facade_reads (
    function_name text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    CONSTRAINT contract_facade_reads_pkey PRIMARY KEY (function_name, schema_name, table_name),
    CONSTRAINT contract_facade_reads_facade_fk FOREIGN KEY (function_name)
        REFERENCES aos.contract_facades (function_name),
    CONSTRAINT contract_facade_reads_table_fk FOREIGN KEY (schema_name, table_name)
        REFERENCES aos.contract_tables (schema_name, table_name)
);
COMMENT ON TABLE aos.contract_facade_reads IS
    'Contract: the tables and views each facade may read (XD-001). Rows outside the facade''s domain are '
    'the allowed cross-domain reads.';
COMMENT ON COLUMN aos.contract_facade_reads.function_name IS 'Facade function.';
COMMENT ON COLUMN aos.contract_facade_reads.schema_name IS 'Schema of a table it may read.';
COMMENT ON COLUMN aos.contract_facade_reads.table_name IS 'Table or view it may read.';

INSERT INTO aos.contract_facade_reads (function_name, schema_name, table_name)
SELECT f.function_name, split_part(t.qualified, '.', 1), split_part(t.qualified, '.', 2)
FROM (VALUES
    ('api.activity_runs', '{activity.runs,activity.aos_traces,activity.v_runs_o2}'::text[]),
    ('api.activity_run', '{activity.runs,activity.aos_traces,activity.v_runs_o2}'),
    ('api.activity_run_evidence',
        '{activity.runs,activity.aos_traces,activity.v_runs_o2,incidents.incidents,policies.policy_proposals,policies.prevention_records}'),
    ('api.incidents', '{incidents.incidents,incidents.incident_events,incidents.incident_evidence,incidents.v_incidents_o2}'),
    ('api.incident', '{incidents.incidents,incidents.incident_events,incidents.incident_evidence,incidents.v_incidents_o2}'),
    ('api.incident_evidence',
        '{incidents.incidents,incidents.incident_events,incidents.incident_evidence,incidents.v_incidents_o2,'
        'activity.runs,policies.policy_proposals}'),
    ('api.policy_proposals', '{policies.policy_proposals,policies.policy_rules}'),
    ('api.policy_proposal', '{policies.policy_proposals,policies.policy_rules,incidents.incidents,activity.runs}')
) AS f (function_name, tables)
CROSS JOIN LATERAL unnest(f.tables) AS t (qualified);

RESET ROLE;
