// name: user_llm_preference_by_task
// Each user's LLM preference distribution per task: the share of the user's
// CHOSE decisions on the task's queries that went to each LLM.
// params: (none)
// returns: user_id, task_id, llm_id, n, share
MATCH (u:User)-[c:CHOSE]->(:LLM)
MATCH (q:Query)-[:OF_TASK]->(t:Task)
WHERE q.id = c.query_id
WITH u, t, count(c) AS total
MATCH (u)-[c2:CHOSE]->(l:LLM)
MATCH (q2:Query)-[:OF_TASK]->(t)
WHERE q2.id = c2.query_id
WITH u.id AS user_id, t.id AS task_id, l.id AS llm_id, total, count(c2) AS n
RETURN user_id, task_id, llm_id, n, 1.0 * n / total AS share
ORDER BY user_id, task_id, n DESC, llm_id
