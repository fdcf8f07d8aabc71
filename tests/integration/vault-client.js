// Run by test-vault-client.sh: node-vault (a Vault client nobody here wrote) against the Vault
// stand-in of `imgbuild serve`. Env: VAULT1 / VAULT2 (i-1's and i-2's Vault URLs), CA_PEM (the
// local CA's PEM file). Prints "ok - ..." per check; the first failed check exits non-zero.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const nodeVault = require('node-vault');

const ca = new crypto.X509Certificate(fs.readFileSync(process.env.CA_PEM));
const vault = nodeVault({ endpoint: process.env.VAULT1 });
const other = nodeVault({ endpoint: process.env.VAULT2 });

let step = 0;
function ok(what) {
    step++;
    console.log(`ok ${step} - ${what}`);
}

// The ApiResponseError node-vault raises for a reply other than 200/204.
async function rejects(promise, status, message) {
    let err;
    try {
        await promise;
    } catch (e) {
        err = e;
    }
    assert.ok(err, `expected HTTP ${status}, got success`);
    assert.equal(err.response && err.response.statusCode, status, `status for: ${err.message}`);
    if (message !== undefined) assert.equal(err.message, message);
    return err;
}

function checkCert(data, name, ip) {
    const cert = new crypto.X509Certificate(data.certificate);
    assert.ok(cert.checkIssued(ca), 'issued by the local CA');
    assert.ok(cert.verify(ca.publicKey), 'signature verifies with the CA key');
    assert.ok(cert.subjectAltName.includes(`DNS:${name}`), cert.subjectAltName);
    if (ip) assert.ok(cert.subjectAltName.includes(`IP Address:${ip}`), cert.subjectAltName);
    return cert;
}

async function main() {
    // sys/health and sys/seal-status, unauthenticated
    const health = await vault.health();
    assert.equal(health.initialized, true);
    assert.equal(health.sealed, false);
    assert.equal(health.standby, false);
    assert.equal(typeof health.server_time_utc, 'number');
    const health2 = await vault.health({ standbyok: true, activecode: 200 });
    assert.equal(health2.initialized, true);
    ok('sys/health');
    const seal = await vault.status();
    assert.equal(seal.sealed, false);
    assert.equal(seal.type, 'shamir');
    ok('sys/seal-status');

    // login through the Exoscale auth route, bound to this listener's instance
    await rejects(vault.write('auth/exoscale/login', { role: 'etcd', instance: 'i-2' }), 403, 'permission denied');
    const login = await vault.write('auth/exoscale/login', { role: 'etcd', instance: 'i-1', extra: 1 });
    assert.match(login.auth.client_token, /^hvs\./);
    assert.equal(login.auth.lease_duration, 3600);
    assert.equal(login.auth.renewable, true);
    assert.deepEqual(login.auth.policies, ['default', 'etcd']);
    assert.deepEqual(login.warnings, ['Endpoint ignored these unrecognized parameters: [extra]']);
    vault.token = login.auth.client_token;
    ok('login (unknown field warned about, not refused)');

    // lookup, renew (with and without increment)
    const self = await vault.tokenLookupSelf();
    assert.equal(self.data.id, vault.token);
    assert.equal(self.data.meta.instance_id, 'i-1');
    assert.ok(self.data.ttl > 0 && self.data.ttl <= 3600);
    ok('token lookup-self');
    const renewed = await vault.tokenRenewSelf({ increment: '30m' });
    assert.equal(renewed.auth.client_token, vault.token);
    assert.equal(renewed.auth.lease_duration, 1800);
    const renewed2 = await vault.tokenRenewSelf({ increment: 7200 });
    assert.equal(renewed2.auth.lease_duration, 7200);
    const renewed3 = await vault.tokenRenewSelf();
    assert.equal(renewed3.auth.lease_duration, 3600);
    ok('token renew-self honours increment');

    // KV v2 with check-and-set
    const v1 = await vault.write('secret/data/etcd/client', { data: { a: '1' }, options: { cas: 0 } });
    assert.equal(v1.data.version, 1);
    await rejects(vault.write('secret/data/etcd/client', { data: { a: 'x' }, options: { cas: 0 } }), 400,
        'check-and-set parameter did not match the current version');
    const v2 = await vault.write('secret/data/etcd/client', { data: { a: '2' }, options: { cas: 1 } });
    assert.equal(v2.data.version, 2);
    const read = await vault.read('secret/data/etcd/client');
    assert.deepEqual(read.data.data, { a: '2' });
    assert.equal(read.data.metadata.version, 2);
    const old = await vault.read('secret/data/etcd/client?version=1');
    assert.deepEqual(old.data.data, { a: '1' });
    const seeded = await vault.read('secret/data/bootagent/cloud-api');
    assert.equal(typeof seeded.data.data.api_key, 'string');
    ok('KV v2 write/read with check-and-set');

    // KV v2 patch, list, delete where the policy grants them
    await vault.write('secret/data/scratch/p', { data: { keep: 'k', drop: 'd' } });
    const patched = await vault.update('secret/data/scratch/p', { data: { drop: null, add: 'a' } });
    assert.equal(patched.data.version, 2);
    assert.deepEqual((await vault.read('secret/data/scratch/p')).data.data, { keep: 'k', add: 'a' });
    await vault.write('secret/data/scratch/dir/q', { data: { q: 1 } });
    const listed = await vault.list('secret/metadata/scratch');
    assert.deepEqual(listed.data.keys, ['dir/', 'p']);
    const listedGet = await nodeVault({ endpoint: process.env.VAULT1, token: vault.token, noCustomHTTPVerbs: true })
        .list('secret/metadata/scratch/dir');
    assert.deepEqual(listedGet.data.keys, ['q']);
    await vault.delete('secret/data/scratch/p');
    await rejects(vault.read('secret/data/scratch/p'), 404);
    await vault.delete('secret/metadata/scratch/p');
    assert.deepEqual((await vault.list('secret/metadata/scratch')).data.keys, ['dir/']);
    await rejects(vault.list('secret/metadata/etcd'), 403, '1 error occurred:\n\t* permission denied\n\n');
    await rejects(vault.delete('secret/data/etcd/client'), 403);
    ok('KV v2 patch/list/delete');

    // policy and token refusals in Vault's words
    await rejects(vault.read('secret/data/other'), 403, '1 error occurred:\n\t* permission denied\n\n');
    await rejects(vault.write('secret/data/bootagent/cloud-api', { data: {} }), 403);
    other.token = vault.token;
    await rejects(other.tokenLookupSelf(), 403, '2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n');
    ok('permission denied texts');

    // PKI issue (pem, pkcs8 key) and pem_bundle
    const issued = await vault.write('pki/issue/etcd-peer', {
        common_name: 'etcd-1.etcd.local', alt_names: 'peer.etcd.local', ip_sans: '127.0.0.11', ttl: '1h',
        private_key_format: 'pkcs8',
    });
    const cert = checkCert(issued.data, 'etcd-1.etcd.local', '127.0.0.11');
    assert.ok(cert.subjectAltName.includes('DNS:peer.etcd.local'));
    assert.match(issued.data.private_key, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(issued.data.private_key)));
    assert.equal(issued.data.private_key_type, 'ec');
    assert.equal(issued.data.issuing_ca.trim(), ca.toString().trim());
    const lifetime = issued.data.expiration - Math.floor(Date.now() / 1000);
    assert.ok(lifetime > 3500 && lifetime <= 3600, `expiration in ${lifetime} s`);
    assert.match(issued.data.serial_number, /^[0-9a-f]{2}(:[0-9a-f]{2})+$/);
    const bundle = await vault.write('pki/issue/etcd-peer', { common_name: 'etcd-2.etcd.local', format: 'pem_bundle' });
    assert.ok(bundle.data.certificate.startsWith(bundle.data.private_key));
    checkCert({ certificate: bundle.data.certificate.slice(bundle.data.certificate.indexOf('-----BEGIN CERTIFICATE')) },
        'etcd-2.etcd.local');
    const capped = await vault.write('pki/issue/etcd-peer', { common_name: 'etcd-3.etcd.local', ttl: '100d' });
    assert.equal(capped.warnings.length, 1);
    await rejects(vault.write('pki/issue/etcd-peer', { common_name: 'evil.example.com' }), 400);
    ok('PKI issue');

    // revoke: the token is gone afterwards
    await vault.tokenRevokeSelf();
    await rejects(vault.tokenLookupSelf(), 403, '2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n');
    vault.token = undefined;
    await rejects(vault.tokenLookupSelf(), 403, 'missing client token');
    ok('token revoke-self');
}

main().catch((e) => {
    console.error(`not ok ${step + 1} -`, e && e.stack ? e.stack : e);
    process.exit(1);
});
