// name: llm_win_rates_by_task
// Pairwise win rates of the LLMs per task from PREFERRED judgements: an LLM
// scores 1 for a win, 0.5 for a tie and 0 for a loss in each comparison it is in.
// params: (none)
// returns: task_id, llm_id, comparisons, wins, ties, losses, win_rate
MATCH (:User)-[p:PREFERRED]->(w:LLM)
MATCH (q:Query)-[:OF_TASK]->(t:Task)
WHERE q.id = p.query_id
UNWIND [w.id, p.over] AS llm_id
WITH t.id AS task_id, llm_id,
     CASE WHEN p.tie THEN 0.5 WHEN llm_id = w.id THEN 1.0 ELSE 0.0 END AS score
WITH task_id, llm_id, count(*) AS comparisons,
     count(CASE WHEN score = 1.0 THEN 1 END) AS wins,
     count(CASE WHEN score = 0.5 THEN 1 END) AS ties,
     count(CASE WHEN score = 0.0 THEN 1 END) AS losses, sum(score) AS points
RETURN task_id, llm_id, comparisons, wins, ties, losses, points / comparisons AS win_rate
ORDER BY task_id, win_rate DESC, llm_id
