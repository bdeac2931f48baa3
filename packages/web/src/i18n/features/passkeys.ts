/** Messages of one feature, kept apart so features land without touching each other's text. */
const en = {
  passkeys: {
    title: 'Passkeys',
    lead: 'A passkey signs you in with your device’s screen lock, fingerprint, face or a security key. Use it instead of your password (it counts as both factors), or as the second step after your password.',
    none: 'No passkeys yet.',
    add: 'Add a passkey',
    nameLabel: 'Name',
    namePlaceholder: 'e.g. Laptop, Phone, YubiKey',
    passwordLabel: 'Your password',
    passwordLead:
      'Enter your password to add this passkey; your browser then asks for your device or security key.',
    continue: 'Continue',
    cancel: 'Cancel',
    added: 'Passkey added',
    created: 'Added {date}',
    lastUsed: 'last used {date}',
    neverUsed: 'never used',
    synced: 'synced',
    rename: 'Rename',
    save: 'Save',
    renamed: 'Passkey renamed',
    remove: 'Remove',
    removeTitle: 'Remove “{name}”?',
    removeLead: 'You can no longer sign in with it. Enter your password to confirm.',
    removed: 'Passkey removed',
    unsupported:
      'This browser cannot use passkeys here. Passkeys need a secure page (https://, or http://localhost) reached by a host name, not an IP address.',
    cancelled: 'The passkey request was cancelled or timed out.',
    totpOff: 'Authenticator app: off. Your passkeys are your second factor.',
    errors: {
      passkey_invalid: 'The passkey was not accepted ({message}).',
      wrong_password: 'The password is not right.',
    },
  },
  passkeySignin: {
    button: 'Sign in with a passkey',
    or: 'or',
    secondLead: 'Confirm with your passkey to finish signing in.',
    useKey: 'Use my passkey',
    orCode: 'Or enter a code from your authenticator app:',
  },
  requireTwoFactor: {
    title: 'Two-factor sign-in is required',
    lead: 'This server asks every account for a second factor. Set up an authenticator app or add a passkey below; until then your files stay out of reach and app passwords cannot be made.',
  },
};

const zhCN: typeof en = {
  passkeys: {
    title: '通行密钥',
    lead: '通行密钥用设备的屏幕锁、指纹、面容或安全密钥让你登录。可以用它代替密码（它本身就算两重验证），也可以在输入密码后作为第二步验证。',
    none: '还没有通行密钥。',
    add: '添加通行密钥',
    nameLabel: '名称',
    namePlaceholder: '例如：笔记本、手机、YubiKey',
    passwordLabel: '你的密码',
    passwordLead: '输入密码以添加这个通行密钥，随后浏览器会请你使用设备或安全密钥。',
    continue: '继续',
    cancel: '取消',
    added: '已添加通行密钥',
    created: '添加于 {date}',
    lastUsed: '上次使用 {date}',
    neverUsed: '从未使用',
    synced: '已同步',
    rename: '重命名',
    save: '保存',
    renamed: '已重命名通行密钥',
    remove: '移除',
    removeTitle: '移除“{name}”？',
    removeLead: '移除后不能再用它登录。请输入密码确认。',
    removed: '已移除通行密钥',
    unsupported:
      '此浏览器无法在这里使用通行密钥。通行密钥需要安全页面（https://，或 http://localhost），并且要用主机名而不是 IP 地址访问。',
    cancelled: '通行密钥请求已取消或超时。',
    totpOff: '身份验证器应用：未开启。你的通行密钥就是第二重验证。',
    errors: {
      passkey_invalid: '通行密钥未被接受（{message}）。',
      wrong_password: '密码不正确。',
    },
  },
  passkeySignin: {
    button: '用通行密钥登录',
    or: '或',
    secondLead: '请用你的通行密钥确认，完成登录。',
    useKey: '使用我的通行密钥',
    orCode: '或输入身份验证器应用中的验证码：',
  },
  requireTwoFactor: {
    title: '需要两步验证登录',
    lead: '此服务器要求每个账户都设置第二重验证。请在下方设置身份验证器应用或添加通行密钥；在此之前无法访问你的文件，也不能创建应用密码。',
  },
};

export default { en, 'zh-CN': zhCN };
