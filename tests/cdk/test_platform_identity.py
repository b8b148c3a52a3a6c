"""The platform's Cognito user pool and the control plane's OIDC app client (issue 18)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from cdk.platform_identity import CALLBACK_PATH, CONSOLE_CALLBACK_PATH
from control_plane.users.oidc_settings import API_CALLBACK_PATH
from control_plane.web.sso_pages import CALLBACK_PATH as CONSOLE_PAGE_CALLBACK
from tests.cdk.support import REGION, Synthesized, logical_id


def _one(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [r for r in resources.values() if r["Type"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def test_one_invite_only_user_pool_signing_in_by_email(synthesized: Synthesized) -> None:
    template = synthesized.templates["platform"]
    template.resource_count_is("AWS::Cognito::UserPool", 1)
    template.has_resource(
        "AWS::Cognito::UserPool",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                    "UsernameAttributes": ["email"],
                    "AutoVerifiedAttributes": ["email"],
                    "UsernameConfiguration": {"CaseSensitive": False},
                    "DeletionProtection": "ACTIVE",
                    "Policies": {"PasswordPolicy": Match.object_like({"MinimumLength": 12})},
                    "MfaConfiguration": "OPTIONAL",
                }
            ),
        },
    )


def test_the_app_client_uses_the_code_grant_with_a_secret_and_the_apps_callback(
    synthesized: Synthesized,
) -> None:
    # The stack registers the routes the app serves: the API's callback and the console's.
    assert (CALLBACK_PATH, CONSOLE_CALLBACK_PATH) == (API_CALLBACK_PATH, CONSOLE_PAGE_CALLBACK)
    stack = synthesized.platform
    resources = synthesized.template_json("platform")["Resources"]
    client = _one(resources, "AWS::Cognito::UserPoolClient")["Properties"]
    assert client["UserPoolId"] == {"Ref": logical_id(stack, stack.identity.user_pool)}
    assert client["GenerateSecret"] is True
    assert client["AllowedOAuthFlows"] == ["code"]  # no implicit grant
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    # No password flows straight against the pool: people sign in through the hosted page only.
    assert set(client["ExplicitAuthFlows"]) == {"ALLOW_REFRESH_TOKEN_AUTH"}
    lb = logical_id(stack, stack.compute.load_balancer)
    assert client["CallbackURLs"] == [
        {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [lb, "DNSName"]}, path]]}
        for path in (CALLBACK_PATH, CONSOLE_CALLBACK_PATH)
    ]


def test_the_api_gets_the_secret_key_and_its_public_url_and_outputs_name_the_issuer(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.platform
    template = synthesized.templates["platform"]
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Description": "FRAUDRAIL_OIDC_SECRET_KEY",
            "KmsKeyId": {"Fn::GetAtt": [logical_id(stack, stack.key), "Arn"]},
            "GenerateSecretString": Match.object_like({"PasswordLength": 48}),
        },
    )
    resources = synthesized.template_json("platform")["Resources"]
    containers = {
        c["Name"]: c
        for r in resources.values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"]
    }
    env = {e["Name"]: e["Value"] for e in containers["api"]["Environment"]}
    lb = logical_id(stack, stack.compute.load_balancer)
    assert env["FRAUDRAIL_OIDC_PUBLIC_URL"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [lb, "DNSName"]}]]
    }
    outputs = synthesized.template_json("platform")["Outputs"]
    pool = logical_id(stack, stack.identity.user_pool)
    assert outputs["UserPoolId"]["Value"] == {"Ref": pool}
    issuer = outputs["OidcIssuer"]["Value"]["Fn::Join"][1]
    assert issuer[0] == f"https://cognito-idp.{REGION}." and {"Ref": pool} in issuer
    assert "UserPoolClientId" in outputs and "HostedSignInDomain" in outputs
