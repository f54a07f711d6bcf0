// name: new_user_eval_by_k
// The new-user evaluation (EVALUATED setting 'new_user') per model version and
// number of shots k: users evaluated, decisions scored, and the mean over users
// of their reward, performance, cost and accuracy.
// params: (none)
// returns: model_version, shots, users, n, mean_reward, mean_performance, mean_cost, mean_accuracy
MATCH (m:RouterModel)-[e:EVALUATED]->(u:User)
WHERE e.setting = 'new_user'
WITH m.version AS model_version, e.shots AS shots, count(u) AS users, sum(e.n) AS n,
     avg(e.reward) AS mean_reward, avg(e.performance) AS mean_performance,
     avg(e.cost) AS mean_cost, avg(e.accuracy) AS mean_accuracy
RETURN model_version, shots, users, n, mean_reward, mean_performance, mean_cost, mean_accuracy
ORDER BY model_version, shots
