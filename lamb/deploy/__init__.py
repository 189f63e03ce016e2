"""``lamb deploy``: put a packaged artifact on AWS Lambda and prove the deployed code is the built code.

- ``artifact``: what the artifact's own record says (runtime, arch, handler, measured figures).
- ``plan``: Lambda's limits, the settings and the names, without calling AWS.
- ``planner``: what exists (read first) -> the API calls that make the function as asked, as data.
- ``calls``: a call as data, and the same calls as AWS CLI commands (``--plan``).
- ``learn``: a symbol version the real target lacks, from a failed smoke test, recorded as a measured fact.
- ``aws``: reading state and the ``Executor`` that makes the calls (waiters, retries); every refusal is one ``AwsError`` line.
- ``template``: the same function as a CloudFormation template.
- ``report``: ``DeployReport``, what a deploy did; ``render`` draws it for the CLI.
- ``run``: ``deploy_artifact`` (a lamb artifact) and ``deploy_facts`` (also a plain zip, as ``lamb probe``'s) tie them together and write ``<stem>.deploy.json``.
"""

from lamb.deploy.plan import DeployOptions
from lamb.deploy.report import DeployReport
from lamb.deploy.run import deploy_artifact, deploy_facts

__all__ = ["DeployOptions", "DeployReport", "deploy_artifact", "deploy_facts"]
