// name: cost_saved_per_user
// Per user, the cost of the LLMs they chose versus always taking the most
// expensive answer of each query (the highest ANSWERED_BY cost of that query).
// Only decisions whose chosen LLM has an ANSWERED_BY outcome are counted.
// params: (none)
// returns: user_id, n, chosen_cost, max_cost, cost_saved, saved_share
MATCH (u:User)-[c:CHOSE]->(l:LLM)
MATCH (q:Query)-[a:ANSWERED_BY]->(l)
WHERE q.id = c.query_id
MATCH (q)-[b:ANSWERED_BY]->(:LLM)
WITH u.id AS user_id, q.id AS query_id, a.cost AS chosen_cost, max(b.cost) AS max_cost
WITH user_id, count(*) AS n, sum(chosen_cost) AS chosen_cost, sum(max_cost) AS max_cost
RETURN user_id, n, chosen_cost, max_cost, max_cost - chosen_cost AS cost_saved,
       CASE WHEN max_cost > 0 THEN (max_cost - chosen_cost) / max_cost ELSE NULL END
         AS saved_share
ORDER BY cost_saved DESC, user_id
