// name: routing_agreement_by_model
// Per router model version, how often its pick (ROUTED_TO rank 1) is the LLM
// the user actually chose (CHOSE) on the same query. Versions whose write-back
// has not finished (no RouterModel node) are left out.
// params: (none)
// returns: model_version, n, agreed, agreement
MATCH (m:RouterModel)
WITH collect(m.version) AS recorded
MATCH (u:User)-[r:ROUTED_TO]->(p:LLM)
WHERE r.rank = 1 AND r.model_version IN recorded
MATCH (u)-[c:CHOSE]->(l:LLM)
WHERE c.query_id = r.query_id
WITH r.model_version AS model_version, count(*) AS n,
     count(CASE WHEN p.id = l.id THEN 1 END) AS agreed
RETURN model_version, n, agreed, 1.0 * agreed / n AS agreement
ORDER BY model_version
