// name: latest_router_model
// The most recently created RouterModel (by created_at, ties by version) with
// its config and metrics (JSON strings) and how many EVALUATED edges it has.
// params: (none)
// returns: version, created_at, config, metrics, evaluations
MATCH (m:RouterModel)
WITH m
ORDER BY m.created_at DESC, m.version DESC
LIMIT 1
OPTIONAL MATCH (m)-[e:EVALUATED]->(:User)
RETURN m.version AS version, m.created_at AS created_at, m.config AS config,
       m.metrics AS metrics, count(e) AS evaluations
