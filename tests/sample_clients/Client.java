// Create a payment and read its status, as AliKassa's Java sample does: Jackson, BouncyCastle's
// PEMEncryptedKeyPair (legacy PEM only) with the untrimmed password.txt, java.net.http.
import java.io.FileReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.PrivateKey;
import java.security.Signature;
import java.util.Base64;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMEncryptedKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcePEMDecryptorProviderBuilder;

public class Client {
    static final ObjectMapper MAPPER = new ObjectMapper();

    static Map<?, ?> requestPayment(String base, String method, String account, Map<String, Object> data)
            throws Exception {
        String dataStr = MAPPER.writeValueAsString(data);
        char[] pass = Files.readString(Paths.get("cert/payment/password.txt")).toCharArray();
        PrivateKey privateKey;
        try (PEMParser parser = new PEMParser(new FileReader("cert/payment/private.pem"))) {
            PEMEncryptedKeyPair ckp = (PEMEncryptedKeyPair) parser.readObject();
            privateKey = new JcaPEMKeyConverter()
                    .getKeyPair(ckp.decryptKeyPair(new JcePEMDecryptorProviderBuilder()
                            // OpenSSL's key derivation comes from BouncyCastle, not the JDK.
                            .setProvider(new BouncyCastleProvider()).build(pass)))
                    .getPrivate();
        }
        Signature sig = Signature.getInstance("SHA1withRSA");
        sig.initSign(privateKey);
        sig.update(dataStr.getBytes(StandardCharsets.UTF_8));
        String sign = Base64.getEncoder().encodeToString(sig.sign());
        HttpRequest request = HttpRequest.newBuilder()
                .uri(URI.create(base + "/" + method))
                .header("Content-Type", "application/json")
                .header("Account", account)
                .header("Sign", sign)
                .header("User-Agent", "AliKassa2.0 API")
                .POST(HttpRequest.BodyPublishers.ofString(dataStr))
                .build();
        HttpResponse<String> response = HttpClient.newHttpClient()
                .send(request, HttpResponse.BodyHandlers.ofString());
        return MAPPER.readValue(response.body(), Map.class);
    }

    public static void main(String[] args) throws Exception {
        String base = args[0];
        String account = args[1];
        Map<?, ?> payment = requestPayment(base, "v1/payment", account, Map.of(
                "order_id", args[2],
                "amount", 500,
                "customer_browser_user_agent", "Mozilla/5.0 ...",
                "customer_ip", "18.191.80.10",
                "success_redirect_id", 1,
                "fail_redirect_id", 1,
                "notification_endpoint_id", 5,
                "service", "payment_card_rub_hpp"));
        System.out.println(MAPPER.writeValueAsString(payment));
        Map<?, ?> status = requestPayment(base, "v1/payment/status", account,
                Map.of("id", String.valueOf(payment.get("id"))));
        System.out.println(MAPPER.writeValueAsString(status));
    }
}
