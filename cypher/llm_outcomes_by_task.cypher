// name: llm_outcomes_by_task
// Mean performance and cost of every LLM on every task, from the outcome edges.
// params: (none)
// returns: task_id, llm_id, n, mean_performance, mean_cost
MATCH (t:Task)<-[:OF_TASK]-(q:Query)-[a:ANSWERED_BY]->(l:LLM)
RETURN t.id AS task_id, l.id AS llm_id, count(a) AS n,
       avg(a.performance) AS mean_performance, avg(a.cost) AS mean_cost
ORDER BY task_id, mean_performance DESC, llm_id
