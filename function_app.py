"""The Azure Functions entry point: builds the app and registers one blueprint per family."""

import azure.functions as func

from functions import alerts, directory_sync, pipeline, reconcile, timers, webhooks

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for family in (webhooks, pipeline, directory_sync, timers, reconcile, alerts):
    app.register_functions(family.bp)
