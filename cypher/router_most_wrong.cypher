// name: router_most_wrong
// Where one router model version was most wrong: decisions whose pick
// (ROUTED_TO rank 1) differs from the user's choice (CHOSE), by how much better
// the chosen LLM performed on that query than the pick (ANSWERED_BY). Only a
// version whose write-back finished (it has a RouterModel node) has rows.
// params: $model_version (str), $limit (int)
// returns: user_id, query_id, routed_llm_id, chosen_llm_id, performance_gap, cost_gap
MATCH (m:RouterModel)
WHERE m.version = $model_version
MATCH (u:User)-[r:ROUTED_TO]->(p:LLM)
WHERE r.rank = 1 AND r.model_version = m.version
MATCH (u)-[c:CHOSE]->(l:LLM)
WHERE c.query_id = r.query_id AND l.id <> p.id
MATCH (q:Query)-[ap:ANSWERED_BY]->(p)
WHERE q.id = r.query_id
MATCH (q)-[ac:ANSWERED_BY]->(l)
RETURN u.id AS user_id, q.id AS query_id, p.id AS routed_llm_id, l.id AS chosen_llm_id,
       ac.performance - ap.performance AS performance_gap, ac.cost - ap.cost AS cost_gap
ORDER BY performance_gap DESC, user_id, query_id
LIMIT $limit
