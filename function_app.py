"""The Azure Functions entry point: builds the app and registers one blueprint per family."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
