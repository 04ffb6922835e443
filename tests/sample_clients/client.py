"""Create a payment and read its status, as AliKassa's Python sample does (json.dumps, requests)."""

import base64
import json
import sys

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def request_payment(base: str, method: str, account: str, data: dict[str, object]) -> object:
    data_bytes = json.dumps(data).encode("utf-8")
    with open("cert/payment/password.txt", "rb") as f:
        password = f.read().strip()
    with open("cert/payment/private.pem", "rb") as f:
        private_key = serialization.load_pem_private_key(f.read(), password=password)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    signature = private_key.sign(data_bytes, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - AliKassa signs SHA-1
    sign = base64.b64encode(signature).decode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Account": account,
        "Sign": sign,
        "User-Agent": "AliKassa2.0 API",
    }
    resp = requests.post(f"{base}/{method}", data=data_bytes, headers=headers, timeout=30)
    return resp.json()


base, account, order_id = sys.argv[1:4]
payment = request_payment(
    base,
    "v1/payment",
    account,
    {
        "order_id": order_id,
        "amount": 500,
        "customer_browser_user_agent": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:84.0) "
        "Gecko/20100101 Firefox/84.0",
        "customer_ip": "18.191.80.10",
        "success_redirect_id": 1,
        "fail_redirect_id": 1,
        "notification_endpoint_id": 5,
        "service": "payment_card_rub_hpp",
    },
)
print(json.dumps(payment))
assert isinstance(payment, dict)
print(json.dumps(request_payment(base, "v1/payment/status", account, {"id": str(payment["id"])})))
