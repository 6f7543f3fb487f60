"""Quick start for the tokenisation vault, as shown in the article (every block here is tested).

Run it with ``python reference/examples/vault_quickstart.py``: it uses moto unless FASTERPAY_BACKEND says
otherwise.
"""

from __future__ import annotations

# --8<-- [start:setup]
from fasterpay.aws import Backend, open_environment
from fasterpay.vault import Caller, DataKeyCachePolicy, DynamoDbAuditLog, Vault, VaultPolicy
from fasterpay.vault.stack import deploy_vault

policy = VaultPolicy.of(
    grants=[("scheme-gateway", ["iban", "name"], ["scheme-submission"])],  # (1)!
    erasers=["data-protection-officer"],
)
cache = DataKeyCachePolicy(max_age_seconds=300, max_uses=10_000)  # (2)!
# --8<-- [end:setup]


def main() -> dict[str, str]:
    with open_environment() as env:
        resources = deploy_vault(env.client("cloudformation"), env.client("kms"),
                                 on_moto=env.backend is not Backend.AWS)
        # --8<-- [start:wire]
        dynamodb = env.client("dynamodb")
        vault = Vault(
            kms=env.client("kms"), dynamodb=dynamodb,
            table_name=resources.vault_table,  # (1)!
            key_id=resources.vault_key_arn, mac_key_id=resources.token_mac_key_arn,
            audit=DynamoDbAuditLog(dynamodb, resources.audit_table),  # (2)!
            policy=policy, cache=cache,
            sts=env.client("sts"),  # (3)!
        )
        # --8<-- [end:wire]
        # --8<-- [start:tokenize]
        token = vault.tokenize(
            "GB82 WEST 1234 5698 7654 32", "iban", tenant="bank-a", subject="customer-42"
        )  # (1)!
        match_key = vault.tokenize(
            "GB82 WEST 1234 5698 7654 32", "iban", tenant="bank-a", subject="customer-42",
            deterministic=True,
        )  # (2)!
        # --8<-- [end:tokenize]
        # --8<-- [start:tokenize-many]
        payment_tokens = vault.tokenize_many(
            [
                ("GB82 WEST 1234 5698 7654 32", "iban"),  # debtor account
                ("GB33 BUKB 2020 1555 5555 55", "iban"),  # creditor account
                ("Zoë O’Brien", "name"),
                ("Sam Patel", "name"),
            ],
            tenant="bank-a", subject="payment-6f1c",
        )  # (1)!
        # --8<-- [end:tokenize-many]
        # --8<-- [start:detokenize]
        gateway = Caller("scheme-gateway", "scheme-submission")
        iban = vault.detokenize(token, tenant="bank-a", caller=gateway)  # (1)!
        # --8<-- [end:detokenize]
        # --8<-- [start:erase]
        dpo = Caller("data-protection-officer", "gdpr-art-17")
        receipt = vault.erase_subject(tenant="bank-a", subject="customer-42", caller=dpo)  # (1)!
        # --8<-- [end:erase]
        return {"token": token, "match_key": match_key, "payment_tokens": payment_tokens, "iban": iban,
                "erased_at": receipt.erased_at.isoformat()}


if __name__ == "__main__":
    print(main())
