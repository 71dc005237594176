"""The concepts behind the pipeline scripts, a module each; nothing here imports a script.

config (paths, atomic writes), artifacts (file names, releases, what is deployed), history (the
SQLite record), contract (columns, types, the CSV reader and validator), model (train, predict,
score, per-feature pushes), drift (verdict statistics), challenger (candidate windows and the gate),
registry (deploy, adopt, roll back). config, artifacts, history and registry use the standard
library only: the idle cron run imports them and nothing heavier.
"""
