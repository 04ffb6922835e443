// Create a payment and read its status, as AliKassa's Node sample does: http(s).request with the
// body streamed through req.write (no Content-Length, so Node sends it chunked).
import { readFileSync } from 'fs';
import { createSign } from 'crypto';
import http from 'http';
import https from 'https';

function requestPayment(base, method, account, data) {
  const dataStr = JSON.stringify(data);
  const privateKeyPem = readFileSync('cert/payment/private.pem', 'utf8');
  const passphrase = readFileSync('cert/payment/password.txt', 'utf8').trim();
  const signer = createSign('SHA1');
  signer.update(dataStr);
  signer.end();
  const sign = signer.sign({ key: privateKeyPem, passphrase }, 'base64');
  const url = new URL(`${base}/${method}`);
  const options = {
    hostname: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Account: account,
      Sign: sign,
      'User-Agent': 'AliKassa2.0 API',
    },
    timeout: 30000,
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(options, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', reject);
    req.write(dataStr);
    req.end();
  });
}

const [base, account, orderId] = process.argv.slice(2);
const payment = await requestPayment(base, 'v1/payment', account, {
  order_id: orderId,
  amount: 500,
  customer_browser_user_agent:
    'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:84.0) Gecko/20100101 Firefox/84.0',
  customer_ip: '18.191.80.10',
  success_redirect_id: 1,
  fail_redirect_id: 1,
  notification_endpoint_id: 5,
  service: 'payment_card_rub_hpp',
});
console.log(JSON.stringify(payment));
const status = await requestPayment(base, 'v1/payment/status', account, { id: String(payment.id) });
console.log(JSON.stringify(status));
