<?php
// Reads and writes rows in MariaDB through the stack network ("db" is the service name).
//   GET  /            list the notes
//   GET  /?add=text   add a note, then list (handy for curl)
//   POST /  body=...  add a note from the form
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
header('Content-Type: text/html; charset=utf-8');
try {
    $db = new mysqli(getenv('DB_HOST'), getenv('DB_USER'), getenv('DB_PASSWORD'), getenv('DB_NAME'));
} catch (mysqli_sql_exception $e) {
    http_response_code(503);
    echo "database not reachable: ", htmlspecialchars($e->getMessage()), "\n";
    exit;
}
$new = $_POST['body'] ?? $_GET['add'] ?? null;
if ($new !== null && $new !== '') {
    $stmt = $db->prepare('INSERT INTO notes (body) VALUES (?)');
    $stmt->bind_param('s', $new);
    $stmt->execute();
}
$rows = $db->query('SELECT id, body FROM notes ORDER BY id')->fetch_all(MYSQLI_ASSOC);
?>
<!doctype html>
<title>LNMP on composer</title>
<h1>Rendered by PHP <?= PHP_VERSION ?>, read from MariaDB <?= htmlspecialchars($db->server_info) ?></h1>
<ul>
<?php foreach ($rows as $r): ?>
  <li class="note" data-id="<?= (int)$r['id'] ?>"><?= htmlspecialchars($r['body']) ?></li>
<?php endforeach; ?>
</ul>
<p>rows: <?= count($rows) ?></p>
<form method="post"><input name="body"><button>add</button></form>
