// pgjdbc through a transaction-mode pool (tests/pg_pool_tx.rs): many
// connections at once, each with its own statement cache (server-side
// prepared statements once a statement has run `prepareThreshold` times),
// pipelined executeBatch (many Bind/Execute, one Sync), and explicit
// transactions. Run as a single-file program:
//   java -cp /usr/share/java/postgresql.jar PgjdbcTx.java URL USER PASSWORD CLIENTS
// Prints "pgjdbc ok CLIENTS" or throws.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class PgjdbcTx {
    static int one(String url, Properties props, int caller) throws Exception {
        try (Connection c = DriverManager.getConnection(url, props)) {
            int total = 0;
            // Ten runs: past prepareThreshold (3 here), the driver prepares
            // the statement server-side under its own name (S_n).
            try (PreparedStatement ps = c.prepareStatement("select ?::int + ?::int")) {
                for (int n = 0; n < 10; n++) {
                    ps.setInt(1, caller);
                    ps.setInt(2, n);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        total += rs.getInt(1);
                    }
                }
            }
            if (total != 10 * caller + 45) {
                throw new IllegalStateException("caller " + caller + ": total " + total);
            }
            // A batch: pipelined Bind/Execute pairs and one Sync, four times
            // (server-side prepared after the threshold).
            for (int round = 0; round < 4; round++) {
                try (PreparedStatement ins = c.prepareStatement("insert into jdbc_rows values (?, ?)")) {
                    for (int k = 0; k < 50; k++) {
                        ins.setInt(1, caller);
                        ins.setInt(2, round * 50 + k);
                        ins.addBatch();
                    }
                    int[] counts = ins.executeBatch();
                    if (counts.length != 50) {
                        throw new IllegalStateException("batch of " + counts.length);
                    }
                }
            }
            // An explicit transaction holds one server connection throughout.
            c.setAutoCommit(false);
            try (PreparedStatement q = c.prepareStatement("select count(*) from jdbc_rows where caller = ?")) {
                q.setInt(1, caller);
                try (ResultSet rs = q.executeQuery()) {
                    rs.next();
                    if (rs.getInt(1) != 200) {
                        throw new IllegalStateException("caller " + caller + ": " + rs.getInt(1) + " rows");
                    }
                }
            }
            c.commit();
            return caller;
        }
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "disable");
        props.setProperty("prepareThreshold", "3");
        // Its start-up settings (extra_float_digits, application_name) go
        // in the start-up packet, not as a session-level SET that
        // transaction mode refuses (as pgbouncer's users set it too).
        props.setProperty("assumeMinServerVersion", "9.4");
        int clients = Integer.parseInt(args[3]);
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<Integer>> done = new ArrayList<>();
        for (int i = 0; i < clients; i++) {
            final int caller = i;
            done.add(pool.submit(() -> one(url, props, caller)));
        }
        try {
            for (Future<Integer> f : done) {
                f.get();
            }
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        } finally {
            pool.shutdownNow();
        }
        System.out.println("pgjdbc ok " + clients);
    }
}
