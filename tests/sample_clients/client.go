// Create a payment and read its status, as AliKassa's Go sample does: legacy PEM decrypted with
// x509.DecryptPEMBlock and the untrimmed password.txt, encoding/json, net/http.
package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

func signData(dataBytes []byte) (string, error) {
	pemBytes, err := os.ReadFile("cert/payment/private.pem")
	if err != nil {
		return "", err
	}
	passBytes, err := os.ReadFile("cert/payment/password.txt")
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return "", fmt.Errorf("private.pem holds no PEM block")
	}
	der, err := x509.DecryptPEMBlock(block, passBytes) //nolint:staticcheck // as the sample does
	if err != nil {
		return "", err
	}
	priv, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return "", err
	}
	hash := sha1.Sum(dataBytes)
	sigBytes, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA1, hash[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sigBytes), nil
}

func requestPayment(base, method, account string, data interface{}) (map[string]interface{}, error) {
	dataBytes, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	sign, err := signData(dataBytes)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest("POST", base+"/"+method, bytes.NewReader(dataBytes))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Account", account)
	req.Header.Set("Sign", sign)
	req.Header.Set("User-Agent", "AliKassa2.0 API")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var result map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&result); err != nil {
		return nil, err
	}
	return result, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	base, account := os.Args[1], os.Args[2]
	// The Go sample sends order_id as a number (time.Now().Unix()).
	orderID, err := strconv.ParseInt(os.Args[3], 10, 64)
	if err != nil {
		fail(err)
	}
	payment, err := requestPayment(base, "v1/payment", account, map[string]interface{}{
		"order_id":                    orderID,
		"amount":                      500,
		"customer_browser_user_agent": "Mozilla/5.0 ...",
		"customer_ip":                 "18.191.80.10",
		"success_redirect_id":         1,
		"fail_redirect_id":            1,
		"notification_endpoint_id":    5,
		"service":                     "payment_card_rub_hpp",
	})
	if err != nil {
		fail(err)
	}
	created, _ := json.Marshal(payment)
	fmt.Println(string(created))
	id := fmt.Sprint(payment["id"])
	if number, ok := payment["id"].(float64); ok {
		id = strconv.FormatInt(int64(number), 10)
	}
	status, err := requestPayment(base, "v1/payment/status", account, map[string]interface{}{"id": id})
	if err != nil {
		fail(err)
	}
	answer, _ := json.Marshal(status)
	fmt.Println(string(answer))
}
