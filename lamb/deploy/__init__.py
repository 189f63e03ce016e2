"""``lamb deploy``: put a packaged artifact on AWS Lambda and prove the deployed code is the built code.

- ``artifact``: what the artifact's own record says (runtime, arch, handler, measured figures).
- ``plan``: Lambda's limits, the settings, the upload path and the commands, without calling AWS.
- ``aws``: the boto3 calls, waiters and retries; every refusal is one ``AwsError`` line.
- ``template``: the same function as a CloudFormation template.
- ``run``: ``deploy_artifact`` ties them together and writes ``<stem>.deploy.json``.
"""

from lamb.deploy.plan import DeployOptions
from lamb.deploy.run import DeployReport, deploy_artifact

__all__ = ["DeployOptions", "DeployReport", "deploy_artifact"]
