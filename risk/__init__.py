"""The concepts behind the pipeline scripts, a module each; nothing here imports a script, and no module
imports one that imports it back.

config (the Config and its loader, atomic writes), logs (the log's lines), artifacts (file names, releases,
what is deployed), history (the SQLite record), contract (columns, types, the CSV reader and validator),
model (train, predict, score, per-feature pushes), drift (verdict statistics), challenger (candidate
windows and the gate), registry (deploy, adopt, roll back), runs (the full process's steps, timed).
config, logs, artifacts, history, registry, alerts and runs use the standard library only: the idle cron
run imports them and nothing heavier.
"""
