"""The web app's parts; app.create_app builds the app from them (Flask's tutorial layout, in a package).

Blueprints, one per surface: `api` (the model: /prediction /scoring /summarystats /diagnostics /health),
`history` (/history /releases /drift), `clients` (the risk list: /toprisk /toprisk.csv /clients/<code>),
`pages` (/ the dashboard, /login, /logout, /charts/trend.svg). What they share, a module each: `state`
(what the factory makes once per app), `deployed` (the live model, verified, and its risk list),
`filecache`, `readers` (the history for a request), `watcher` (the late-cron alert), `auth` (who may read
what), `answers` (strict JSON in and out, bounded bodies, no server path), `errors` (the error handlers).
"""
