// name: eval_summary_by_model
// Every router model version's evaluation (EVALUATED) per setting ('general',
// 'new_user', 'new_llm') and shots: users evaluated, decisions scored, and the
// mean over users of their reward, performance, cost and accuracy.
// params: (none)
// returns: model_version, created_at, setting, shots, users, n, mean_reward, mean_performance, mean_cost, mean_accuracy
MATCH (m:RouterModel)-[e:EVALUATED]->(u:User)
WITH m.version AS model_version, m.created_at AS created_at, e.setting AS setting,
     e.shots AS shots, count(u) AS users, sum(e.n) AS n, avg(e.reward) AS mean_reward,
     avg(e.performance) AS mean_performance, avg(e.cost) AS mean_cost,
     avg(e.accuracy) AS mean_accuracy
RETURN model_version, created_at, setting, shots, users, n, mean_reward, mean_performance,
       mean_cost, mean_accuracy
ORDER BY created_at DESC, model_version, setting, shots
