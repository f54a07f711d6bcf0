// Neo4j DDL for the PersonalizedRouter graph. Neo4j is schema-optional: the
// properties of graphdb/schema.py are enforced by the writer; here we declare
// the uniqueness constraints that make MERGE on node keys safe and fast.
CREATE CONSTRAINT user_id IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT task_id IF NOT EXISTS FOR (n:Task) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT query_id IF NOT EXISTS FOR (n:Query) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT llm_id IF NOT EXISTS FOR (n:LLM) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT router_model_version IF NOT EXISTS FOR (n:RouterModel) REQUIRE n.version IS UNIQUE;
// The write lock every batch of an ingest takes first (graphdb/backends/neo4j.py):
// unique, so that two writers creating it at once still share one node.
CREATE CONSTRAINT ingest_lock_id IF NOT EXISTS FOR (n:IngestLock) REQUIRE n.id IS UNIQUE;
CREATE INDEX routed_to_model_version IF NOT EXISTS FOR ()-[r:ROUTED_TO]-() ON (r.model_version);
// Feedback on a response id served before a restart looks its answer up by these.
CREATE INDEX answered_by_response_id IF NOT EXISTS FOR ()-[r:ANSWERED_BY]-() ON (r.response_id);
CREATE INDEX asked_response_id IF NOT EXISTS FOR ()-[r:ASKED]-() ON (r.response_id);
// Relationship keys (graphdb/schema.py RelType.key): a MERGE of one ROUTED_TO / CHOSE /
// PREFERRED edge seeks it by query_id instead of scanning every parallel edge between
// its user and LLM (one per query: thousands for a busy user).
CREATE INDEX routed_to_query_id IF NOT EXISTS FOR ()-[r:ROUTED_TO]-() ON (r.query_id);
CREATE INDEX chose_query_id IF NOT EXISTS FOR ()-[r:CHOSE]-() ON (r.query_id);
CREATE INDEX preferred_query_id IF NOT EXISTS FOR ()-[r:PREFERRED]-() ON (r.query_id);
