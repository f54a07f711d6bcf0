// LadybugDB DDL for the PersonalizedRouter graph. Must agree with graphdb/schema.py.
CREATE NODE TABLE IF NOT EXISTS User(id STRING PRIMARY KEY, alpha DOUBLE, persona STRING);
CREATE NODE TABLE IF NOT EXISTS Task(id STRING PRIMARY KEY, description STRING, embedding FLOAT[], description_inferred BOOL);
CREATE NODE TABLE IF NOT EXISTS Query(id STRING PRIMARY KEY, text STRING, split STRING, embedding FLOAT[]);
CREATE NODE TABLE IF NOT EXISTS LLM(id STRING PRIMARY KEY, description STRING, input_price DOUBLE, output_price DOUBLE, embedding FLOAT[], description_inferred BOOL);
CREATE NODE TABLE IF NOT EXISTS RouterModel(version STRING PRIMARY KEY, created_at STRING, config STRING, metrics STRING);
CREATE REL TABLE IF NOT EXISTS OF_TASK(FROM Query TO Task);
CREATE REL TABLE IF NOT EXISTS ASKED(FROM User TO Query, ts STRING, response_id STRING);
CREATE REL TABLE IF NOT EXISTS ANSWERED_BY(FROM Query TO LLM, performance DOUBLE, cost DOUBLE, input_tokens INT64, output_tokens INT64, response STRING, latency_ms DOUBLE, status STRING, response_id STRING);
CREATE REL TABLE IF NOT EXISTS CHOSE(FROM User TO LLM, query_id STRING, reward DOUBLE, ts STRING);
CREATE REL TABLE IF NOT EXISTS PREFERRED(FROM User TO LLM, query_id STRING, over STRING, tie BOOL, ts STRING);
CREATE REL TABLE IF NOT EXISTS ROUTED_TO(FROM User TO LLM, query_id STRING, model_version STRING, score DOUBLE, rank INT64);
CREATE REL TABLE IF NOT EXISTS EVALUATED(FROM RouterModel TO User, setting STRING, shots INT64, reward DOUBLE, performance DOUBLE, cost DOUBLE, accuracy DOUBLE, n INT64);
// Columns added after the first release: files created before get them here.
ALTER TABLE ANSWERED_BY ADD IF NOT EXISTS latency_ms DOUBLE;
ALTER TABLE ANSWERED_BY ADD IF NOT EXISTS status STRING;
ALTER TABLE Task ADD IF NOT EXISTS description_inferred BOOL;
ALTER TABLE LLM ADD IF NOT EXISTS description_inferred BOOL;
ALTER TABLE ANSWERED_BY ADD IF NOT EXISTS response_id STRING;
ALTER TABLE ASKED ADD IF NOT EXISTS response_id STRING;
