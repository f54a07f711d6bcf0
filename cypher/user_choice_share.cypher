// name: user_choice_share
// For one user, the share of their CHOSE decisions that went to each LLM.
// params: $user_id (str)
// returns: user_id, llm_id, n, share
MATCH (u:User)-[c:CHOSE]->(l:LLM)
WHERE u.id = $user_id
WITH u.id AS user_id, l.id AS llm_id, count(c) AS n
MATCH (u2:User)-[c2:CHOSE]->(:LLM)
WHERE u2.id = $user_id
WITH user_id, llm_id, n, count(c2) AS total
RETURN user_id, llm_id, n, 1.0 * n / total AS share
ORDER BY share DESC, llm_id
