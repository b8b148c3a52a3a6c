"""People's sign-in on AWS: a Cognito user pool per platform and an app client for the control
plane's OpenID Connect sign-in (authorization code grant; the control plane always sends a PKCE
S256 challenge, which Cognito enforces for the code it issues).

A tenant admin points the tenant at this pool with ``PUT /v1/tenants/{id}/oidc``: issuer =
the ``OidcIssuer`` output, client id = ``UserPoolClientId``, and the client secret read once from
Cognito (``aws cognito-idp describe-user-pool-client``). The API container also gets the key that
encrypts such secrets at rest (``FRAUDRAIL_OIDC_SECRET_KEY``, generated in Secrets Manager) and
its public URL, so the redirect URI it sends is the https one registered here.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from cdk.platform_data import generated_secret

CTX_API_PUBLIC_URL = "fraudrail:apiPublicUrl"
CTX_COGNITO_DOMAIN_PREFIX = "fraudrail:cognitoDomainPrefix"
CALLBACK_PATH = "/v1/auth/oidc/callback"  # control_plane.users.oidc_settings.API_CALLBACK_PATH
CONSOLE_CALLBACK_PATH = "/console/sso/callback"  # control_plane.web.sso_pages.CALLBACK_PATH


class PlatformIdentity(Construct):
    """The user pool (invite-only: an administrator creates people; no self sign-up), its hosted
    sign-in domain, and the control plane's confidential app client."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        default_public_url: str,
        key: Any,
        api: ecs.FargateService,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        public_url = str(self.node.try_get_context(CTX_API_PUBLIC_URL) or default_public_url).rstrip("/")
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name="fraudrail-people",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True),
                fullname=cognito.StandardAttribute(required=False, mutable=True),
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=False,
                require_lowercase=False,
                require_uppercase=False,
                require_symbols=False,
                temp_password_validity=Duration.days(7),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,  # people's accounts outlive a stack update gone wrong
        )
        prefix = self.node.try_get_context(CTX_COGNITO_DOMAIN_PREFIX) or f"fraudrail-{stack.account}"
        self.domain = self.user_pool.add_domain(
            "HostedSignIn", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=str(prefix))
        )
        self.client = self.user_pool.add_client(
            "ControlPlaneClient",
            user_pool_client_name="fraudrail-control-plane",
            generate_secret=True,
            auth_flows=cognito.AuthFlow(user_password=False, user_srp=False, admin_user_password=False),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[public_url + CALLBACK_PATH, public_url + CONSOLE_CALLBACK_PATH],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=Duration.minutes(15),
            access_token_validity=Duration.minutes(15),
            refresh_token_validity=Duration.hours(12),
            enable_token_revocation=True,
        )
        self.secret_key = generated_secret(self, "OidcSecretKey", "FRAUDRAIL_OIDC_SECRET_KEY", key)
        container = api.task_definition.default_container
        assert container is not None
        container.add_secret("FRAUDRAIL_OIDC_SECRET_KEY", ecs.Secret.from_secrets_manager(self.secret_key))
        container.add_environment("FRAUDRAIL_OIDC_PUBLIC_URL", public_url)
        self.issuer = f"https://cognito-idp.{stack.region}.{stack.url_suffix}/{self.user_pool.user_pool_id}"
        for output_id, value in {
            "UserPoolId": self.user_pool.user_pool_id,
            "UserPoolClientId": self.client.user_pool_client_id,
            "OidcIssuer": self.issuer,
            "HostedSignInDomain": self.domain.base_url(),
        }.items():
            CfnOutput(stack, output_id, value=value)
