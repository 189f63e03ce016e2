"""The Lambda function lamb ships. Lambda calls ``lambda_function.lambda_handler``.

It answers ``{"url": "https://..."}`` and ``{"image": "<base64>"}`` invoked directly, and API
Gateway or Function URL requests whose body is that JSON or the image's own bytes, with
``{label: score, ...}``. A bad request answers ``{"error": ..., "statusCode": 4xx}``, never a
traceback. Limits and settings (``LAMB_*`` environment variables): see lambkit/settings.py.

To change what it does, write your own file like this one and ship it with
``lamb package --handler my_function.py``; ``lambkit`` (beside this file) offers the parts.
"""

from lambkit import answers_json, load_model, read_image

# Loaded once per execution environment, in Lambda's init phase; if it fails to load, every
# request answers 500 with the reason.
model = load_model()


@answers_json  # errors become JSON answers; API Gateway events get a proxy response
def lambda_handler(event, context):
    image = read_image(event, context)  # fetched or decoded, within the function's limits
    return model.predict(image)  # {label: score, ...}
