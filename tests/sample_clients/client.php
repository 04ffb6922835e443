<?php
// Create a payment and read its status, as AliKassa's PHP sample does (curl, json_encode).

function requestPayment(string $base, string $method, string $account, array $data)
{
    $data = json_encode($data);
    $privateKey = openssl_pkey_get_private(
        file_get_contents('cert/payment/private.pem'),
        file_get_contents('cert/payment/password.txt')
    );
    if ($privateKey === false) {
        throw new \Exception('Error cert.');
    }
    openssl_sign($data, $sign, $privateKey);
    $sign = base64_encode($sign);

    $ch = curl_init();
    curl_setopt($ch, CURLOPT_URL, $base . '/' . $method);
    curl_setopt($ch, CURLOPT_POST, true);
    curl_setopt($ch, CURLOPT_POSTFIELDS, $data);
    curl_setopt($ch, CURLOPT_HTTPHEADER, [
        'Content-Type: application/json',
        'Account: ' . $account,
        'Sign: ' . $sign,
    ]);
    curl_setopt($ch, CURLOPT_HEADER, 0);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);
    curl_setopt($ch, CURLOPT_USERAGENT, 'AliKassa2.0 API');
    curl_setopt($ch, CURLOPT_TIMEOUT, 30);
    $response = curl_exec($ch);
    if ($response === false) {
        throw new \Exception(curl_error($ch));
    }
    return json_decode($response, true);
}

[, $base, $account, $orderId] = $argv;
$payment = requestPayment($base, 'v1/payment', $account, [
    'order_id' => $orderId,
    'amount' => 500,
    'customer_browser_user_agent' => 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:84.0) Gecko/20100101 Firefox/84.0',
    'customer_ip' => '18.191.80.10',
    'success_redirect_id' => 1,
    'fail_redirect_id' => 1,
    'notification_endpoint_id' => 5,
    'service' => 'payment_card_rub_hpp',
]);
echo json_encode($payment), "\n";
$status = requestPayment($base, 'v1/payment/status', $account, ['id' => (string)$payment['id']]);
echo json_encode($status), "\n";
