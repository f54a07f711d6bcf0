// name: similar_users
// The users whose choices agree most with one user's: on the queries both
// chose an LLM for, how often they chose the same one.
// params: $user_id (str), $limit (int)
// returns: user_id, other_id, common, agreed, agreement
MATCH (u:User)-[c:CHOSE]->(l:LLM)
WHERE u.id = $user_id
MATCH (v:User)-[c2:CHOSE]->(l2:LLM)
WHERE c2.query_id = c.query_id AND v.id <> u.id
WITH u.id AS user_id, v.id AS other_id, count(*) AS common,
     count(CASE WHEN l.id = l2.id THEN 1 END) AS agreed
RETURN user_id, other_id, common, agreed, 1.0 * agreed / common AS agreement
ORDER BY agreed DESC, agreement DESC, other_id
LIMIT $limit
